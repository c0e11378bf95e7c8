"""Conversions between the core's dataclasses and robomd_msgs messages."""

from __future__ import annotations

from robomd_diagnoser.catalog import Catalog, Perturbation
from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import RolloutStatus
from robomd_msgs.msg import Perturbation as PerturbationMsg
from robomd_msgs.msg import RolloutRecord as RolloutRecordMsg

STATUS_TO_MSG = {
    RolloutStatus.COMPLETED: RolloutRecordMsg.STATUS_COMPLETED,
    RolloutStatus.ABORTED: RolloutRecordMsg.STATUS_ABORTED,
    RolloutStatus.CANCELLED: RolloutRecordMsg.STATUS_CANCELLED,
    RolloutStatus.UNAVAILABLE: RolloutRecordMsg.STATUS_UNAVAILABLE,
}
MSG_TO_STATUS = {v: k for k, v in STATUS_TO_MSG.items()}


def perturbation_to_msg(p: Perturbation) -> PerturbationMsg:
    """A catalog entry as a Perturbation message."""
    is_object = isinstance(p.value, str)
    return PerturbationMsg(name=p.name, text=p.text, kind=p.kind, target=p.target,
                           value=[] if is_object else [float(v) for v in p.value],
                           object_name=p.value if is_object else "")


def record_to_msg(record: RolloutRecord, catalog: Catalog, campaign_id: str,
                  stamp=None) -> RolloutRecordMsg:
    """A stored rollout as a RolloutRecord message (perturbations expanded from the catalog)."""
    msg = RolloutRecordMsg(
        campaign_id=campaign_id, key=record.key,
        perturbations=[perturbation_to_msg(catalog[n]) for n in record.perturbations],
        seed=int(record.seed), status=STATUS_TO_MSG[RolloutStatus(record.status)],
        success=bool(record.success), steps=int(record.steps), duration=float(record.duration),
        agent_step=-1 if record.agent_step is None else int(record.agent_step),
        reason=record.reason)
    if stamp is not None:
        msg.header.stamp = stamp
    return msg
