"""The password policy: long enough, and not guessable by zxcvbn's estimate (dictionary words, keyboard
walks, repeats, dates, the user's own e-mail). Applied wherever a user sets a password."""

from __future__ import annotations

from zxcvbn import zxcvbn

from easel.settings import Settings

# zxcvbn's cost grows with the length; past this many characters a password is strong by length alone.
SCORED_PREFIX = 100


def password_problem(password: str, settings: Settings, *, email: str = "") -> str | None:
    """Why ``password`` is refused, or None when it passes the policy."""
    if len(password) < settings.password_min_length:
        return f"the password must have at least {settings.password_min_length} characters"
    if not password.strip():
        return "the password must not be blank"
    inputs = [email, *email.replace("@", " ").replace(".", " ").split()] if email else []
    result = zxcvbn(password[:SCORED_PREFIX], user_inputs=inputs)
    if result["score"] < settings.password_min_score:
        feedback = result.get("feedback") or {}
        hints = " ".join(filter(None, [feedback.get("warning"), *feedback.get("suggestions", [])]))
        return (f"the password is too easy to guess (strength {result['score']} of 4, at least "
                f"{settings.password_min_score} needed){': ' + hints if hints else ''}")
    return None
