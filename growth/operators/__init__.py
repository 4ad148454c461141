"""Growth operators, one module each with the same public shape (`OPERATOR`, see `growth.operators.base`).

The table below is the one place operators are registered; plans name them by these keys.
"""

from growth.foundation.registry import Registry
from growth.operators.base import Operator

OPERATORS: Registry[Operator] = Registry("growth operator")
OPERATORS.register("untie", "growth.operators.untie:OPERATOR")
OPERATORS.register("width", "growth.operators.width:OPERATOR")
OPERATORS.register("depth", "growth.operators.depth:OPERATOR")
