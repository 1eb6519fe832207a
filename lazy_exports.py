"""Package-level names that load their module on first access (PEP 562).

`agents.pac` and `environments` export their public names this way: the
package imports nothing until a name is used, so importing a light part
(`agents.pac.acme_compat`, `environments.errors`) never pulls in JAX, Acme or
TensorFlow, and the import order these need (agents/__init__.py) holds.

  __getattr__, __dir__ = lazy_exports.attach(__name__, {'Name': 'module'})
"""

import importlib
import sys
from typing import Any, Callable, Dict, List, Tuple


def attach(package: str, exports: Dict[str, str]
           ) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
  """The module `__getattr__` and `__dir__` of `package`, whose public names
  are `exports` (name -> submodule defining it)."""

  def __getattr__(name: str) -> Any:  # pylint: disable=invalid-name
    if name not in exports:
      raise AttributeError(f'module {package!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{package}.{exports[name]}'),
                    name)
    setattr(sys.modules[package], name, value)  # Later accesses skip this.
    return value

  def __dir__() -> List[str]:  # pylint: disable=invalid-name
    return sorted(set(vars(sys.modules[package])) | set(exports))

  return __getattr__, __dir__
