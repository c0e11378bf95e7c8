"""Policy learning: the vision BC policy and failure-guided fine-tuning on top of it.

Vision behaviour cloning: a small CNN policy on the scene image and proprioception.

Input: the upright HxWx3 uint8 ``image`` plus ``eef_pos`` (3,) and ``gripper`` (1,); output: the
(7,) OSC_POSE action. The encoder is a 4-layer CNN with a spatial-softmax keypoint head (as in
robomimic's BC), followed by an MLP. Training uses random-shift augmentation and, optionally,
photometric colour augmentation of chosen factors (see :data:`COLOR_AUG_FACTORS`).

Demonstrations are compressed ``.npz`` files, one episode each (see :func:`save_demo`). Weights are
saved with ``torch.save`` as plain tensors, lists and numbers and always loaded with
``weights_only=True``: loading a weights file never runs pickled code.

Modules: :mod:`.data` (demonstrations), :mod:`.model` (the network), :mod:`.augment`,
:mod:`.weights` (safe load/save), :mod:`.bc_policy` (the policy under test), :mod:`.train`,
:mod:`.finetune` (the workflow) and :mod:`.finetune_report`.
"""
