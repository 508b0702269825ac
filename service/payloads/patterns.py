"""A regular-expression validator whose ``$`` ends the text, as in the published JSON Schemas.

marshmallow's ``validate.Regexp`` calls ``re.match``, and in Python ``$`` also matches just before a final
newline: ``"scn-1\\n"`` passed ``^[A-Za-z0-9\\-.]{1,64}$`` as a patient id. JSON Schema reads ``pattern`` as
an ECMA-262 expression (2020-12 Validation §6.3.3), where ``$`` without the multiline flag is the end of the
input, so the published schemas already refused it; this makes the service agree with them. The pattern
text is unchanged (apispec publishes ``regex.pattern`` of any ``Regexp``).
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, validate


class WholeText(validate.Regexp):
    """``validate.Regexp`` that must match the whole value (``re.fullmatch``), final newline included."""

    def __init__(self, regex: str, error: str | None = None):
        super().__init__(regex, error=error)
        self.whole = re.compile(regex)

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.whole.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value
