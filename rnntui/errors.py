"""The exceptions for problems the user can fix: each message is one line that says what is wrong and what to do."""


class UserError(ValueError):
    """Something the user can fix."""


class DataError(UserError):
    """A problem with the user's text (a corpus, a prompt)."""
