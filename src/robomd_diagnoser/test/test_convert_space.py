"""Space members and single entries cross the ROS contract (Perturbation.msg) and come back."""

from __future__ import annotations

import pytest

pytest.importorskip("robomd_msgs", reason="robomd_msgs not built: run make setup")

from robomd_diagnoser.catalog import load_catalog  # noqa: E402
from robomd_diagnoser.paths import find_config  # noqa: E402
from robomd_diagnoser.ros.convert import msg_to_perturbation, perturbation_to_msg  # noqa: E402

LIFT = load_catalog(find_config("catalogs/lift_factors.yaml"))


@pytest.mark.parametrize("name", [
    "cube_hue_120+table_color_red", "table_texture_redwood+image_blur_2",
    "camera_orientation_0_10_0+distractors_2", "cube_size_2_1_1", "action_noise_0p1"])
def test_members_round_trip_through_the_message(name):
    p = LIFT[name]
    msg = perturbation_to_msg(p)
    assert msg.kind == "factors" and list(msg.level_names) == [lv for _, lv in p.levels]
    back = msg_to_perturbation(msg)
    assert back == p


def test_every_family_round_trips():
    for family in LIFT.space.families:
        p = LIFT[family.levels[0].full_name]
        assert msg_to_perturbation(perturbation_to_msg(p)) == p


def test_single_entries_keep_their_message_shape():
    lift = load_catalog(find_config("catalogs/lift.yaml"))
    msg = perturbation_to_msg(lift["cube_large"])
    assert msg.kind == "size" and list(msg.value) == [0.04, 0.04, 0.04]
    assert list(msg.level_names) == [] and msg.object_name == ""
    assert msg_to_perturbation(msg) == lift["cube_large"]
    real = load_catalog(find_config("catalogs/real_lift.yaml"))
    msg = perturbation_to_msg(real["object_milk"])
    assert msg.object_name == "milk_carton" and msg_to_perturbation(msg) == real["object_milk"]
