"""One console change of a customer's tariffs, block list or models (issue 17), already validated
by services.provisioning as `pombo load` validates a file, and what it does to a stored list.

Every store applies a change the same way: the tariff row is put or deleted; a list is read,
changed here, and written back whole (as provisioning writes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal[
    "tariff_set", "tariff_remove", "blocklist_add", "blocklist_remove", "model_add", "model_edit", "model_remove",
]
ACTIONS: tuple[Action, ...] = (
    "tariff_set", "tariff_remove", "blocklist_add", "blocklist_remove", "model_add", "model_edit", "model_remove",
)


@dataclass(frozen=True, slots=True)
class CustomerChange:
    """What to change: a tariff (prefix, connection "" for any, value), or one item of a list
    (`item`: the number or the model's text; `new_item`: a model's replacement text)."""

    action: Action
    prefix: str = ""
    connection: str = ""
    value: int | None = None
    item: str = ""
    new_item: str = ""

    @property
    def target(self) -> Literal["tariff", "blocklist", "models"]:
        """Which of the customer's records the change is about."""
        if self.action.startswith("tariff"):
            return "tariff"
        return "blocklist" if self.action.startswith("blocklist") else "models"


def changed_list(change: CustomerChange, current: list[str]) -> list[str] | None:
    """The list after the change (block lists sorted, models in order, no item twice), or None
    when the item to remove or edit is not there."""
    items = list(current)
    if change.action in ("blocklist_add", "model_add"):
        items.append(change.item)
    elif change.item not in items:
        return None
    elif change.action == "model_edit":
        items[items.index(change.item)] = change.new_item
    else:
        items.remove(change.item)
    unique = list(dict.fromkeys(items))
    return sorted(unique) if change.target == "blocklist" else unique
