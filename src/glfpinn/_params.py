"""The one base every part of a run shares: constructor = hyperparameters.

scikit-learn's ``BaseEstimator`` habit: a part's constructor only checks and stores its
arguments, each under an attribute of the same name, so :meth:`Params.get_params` reads them
back by introspecting the constructor's signature, and ``type(p)(**p.get_params())`` builds the
same part again. A run's config is assembled from these parameters (``glfpinn.config``) and
builds the parts from them; nothing else describes what a part is.

Samplers, problems, optimizer stages and plans, model specs, evaluators and schedules derive
from it.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["Params"]

#: The arguments read back: named ones, and ``**options`` (``*args`` cannot be named).
_KINDS = (
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
    inspect.Parameter.VAR_KEYWORD,
)


class Params:
    """A part whose constructor arguments are its hyperparameters (see the module)."""

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, read back from the attributes of the same names; a
        ``**options`` argument's mapping is spread into the result, as it was given."""
        out: dict[str, Any] = {}
        if type(self).__init__ is object.__init__:  # no constructor of its own: no parameters
            return out
        for p in inspect.signature(type(self).__init__).parameters.values():
            if p.name == "self" or p.kind not in _KINDS:
                continue
            if not hasattr(self, p.name):
                raise AttributeError(
                    f"{type(self).__name__}: the constructor argument {p.name!r} is not stored "
                    f"as self.{p.name}, so get_params cannot read it back"
                )
            value = getattr(self, p.name)
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            else:
                out[p.name] = value
        return out
