from rnntui.errors import UserError  # noqa: F401  (moved; this alias goes once every import is updated)
