"""The response actions a playbook step can run, by name (see ``base.Action``)."""

from __future__ import annotations

from playbooks.actions.base import Action, ActionContext
from playbooks.actions.case import CreateCase, UpdateCase
from playbooks.actions.enrich import EnrichObservables
from playbooks.actions.firewall import BlockIp
from playbooks.actions.hunt import Hunt, SigmaHunt, YaraScan
from playbooks.actions.notify import NotifyEmail, NotifyWebhook
from playbooks.actions.remote import DisableAccount, IsolateHost
from playbooks.actions.report import GenerateReport

ACTIONS: dict[str, Action] = {action.name: action for action in (
    EnrichObservables(), Hunt(), SigmaHunt(), YaraScan(), BlockIp(), DisableAccount(),
    IsolateHost(), NotifyEmail(), NotifyWebhook(), CreateCase(), UpdateCase(), GenerateReport(),
)}

__all__ = ["ACTIONS", "Action", "ActionContext"]
