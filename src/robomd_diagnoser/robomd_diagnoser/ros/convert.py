"""Conversions between the core's dataclasses and robomd_msgs messages."""

from __future__ import annotations

from robomd_diagnoser.catalog import Catalog, Perturbation
from robomd_diagnoser.space import MEMBER_KIND, Level, Member
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
    """A catalog entry (a single entry or a space member) as a Perturbation message."""
    if p.edits:
        named = [isinstance(e.value, str) for e in p.edits]
        return PerturbationMsg(
            name=p.name, text=p.text, kind=p.kind, target=p.target,
            value=[float(v) for e, n in zip(p.edits, named, strict=True) if not n
                   for v in e.value],
            level_families=[e.family for e in p.edits], level_names=[e.name for e in p.edits],
            level_factors=[e.factor for e in p.edits], level_targets=[e.target for e in p.edits],
            level_value_sizes=[0 if n else len(e.value) for e, n in zip(p.edits, named,
                                                                        strict=True)],
            level_value_names=[e.value if n else "" for e, n in zip(p.edits, named,
                                                                    strict=True)],
            level_digital=[e.digital for e in p.edits])
    is_object = isinstance(p.value, str)
    return PerturbationMsg(name=p.name, text=p.text, kind=p.kind, target=p.target,
                           value=[] if is_object else [float(v) for v in p.value],
                           object_name=p.value if is_object else "")


def msg_to_perturbation(msg: PerturbationMsg) -> Perturbation:
    """A Perturbation message back as a catalog entry (inverse of :func:`perturbation_to_msg`)."""
    if msg.kind != MEMBER_KIND:
        value = msg.object_name if msg.kind == "object" else tuple(float(v) for v in msg.value)
        return Perturbation(msg.name, msg.text, msg.kind, msg.target, value)
    edits, at = [], 0
    texts = msg.text.split("; ")  # robomd_diagnoser.space.member_text joins the level texts
    texts = [t[:1].upper() + t[1:] for t in texts] if len(texts) == len(msg.level_names) else \
        [msg.text] * len(msg.level_names)
    levels = zip(msg.level_families, msg.level_names, msg.level_factors, msg.level_targets,
                 msg.level_value_sizes, msg.level_value_names, msg.level_digital, strict=True)
    for i, (family, name, factor, target, size, named, digital) in enumerate(levels):
        value = named if size == 0 else tuple(float(v) for v in msg.value[at:at + size])
        at += size
        edits.append(Level(family, name, texts[i], factor, target, value, bool(digital)))
    member = Member(-1, msg.name, msg.text, tuple((e.family, e.name) for e in edits),
                    tuple(edits))
    return member.as_perturbation()


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
