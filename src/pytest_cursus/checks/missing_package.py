"""What to install when importing a script fails with ``No module named 'x'``.

The contract's ``framework_requirements`` name distributions (``scikit-learn``), the error names an import
(``sklearn``): the two are matched by their normalised names, and through a short table of the common
packages whose import name differs from their distribution name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

# import name -> distribution name, where they differ (the frequent ones in pipeline scripts)
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "Crypto": "pycryptodome",
    "google.protobuf": "protobuf",
}
_MISSING = re.compile(r"No module named '([^']+)'")


def install_hint(message: str, requirements: Mapping[str, str], local_roots: Sequence[Path]) -> str | None:
    """What to do about ``message`` (a ModuleNotFoundError's text), or None when it names a module of the
    project itself (a file or package under ``local_roots``): installing would not help there."""
    match = _MISSING.search(message)
    if match is None:
        return None
    module = match.group(1)
    top = module.split(".")[0]
    if any((root / top).is_dir() or (root / f"{top}.py").is_file() for root in local_roots):
        return None
    distribution = _DISTRIBUTIONS.get(module) or _DISTRIBUTIONS.get(top) or top
    wanted = {_normalised(top), _normalised(distribution)}
    for name, spec in requirements.items():
        if _normalised(name) in wanted:
            requirement = f"{name}{_specifier(spec)}"
            return f"the contract declares {requirement} under framework_requirements; pip install {requirement!r}"
    return (
        f"the contract does not declare it under framework_requirements; install the package that provides it "
        f"(pip install {distribution}) and declare it there"
    )


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _specifier(spec: str) -> str:
    spec = spec.strip()
    if not spec or spec == "*":
        return ""
    return f"=={spec}" if spec[0].isdigit() else spec  # `xgboost: 1.7.3` means that version
