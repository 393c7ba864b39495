class UserError(ValueError):
    """Something the user can fix: the message is one line that says what is wrong and what to do."""
