"""The one exception type for problems the user can fix."""


class UserError(ValueError):
    """Something the user can fix: the message is one line that says what is wrong and what to do."""
