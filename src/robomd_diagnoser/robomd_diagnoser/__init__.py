"""RoboMD core: what a diagnosis is, independent of where the rollouts happen (no rclpy here but
in :mod:`.ros`, no simulator anywhere).

Layers, each importing only those above it:

- the core: :mod:`.catalog`, :mod:`.config` (campaign and :class:`~.config.WorldSettings`),
  :mod:`.world` and :mod:`.policy` (the protocols), :mod:`.store`, :mod:`.stats`,
  :mod:`.analysis`, :mod:`.agents`, :mod:`.diagnosis_env`, :mod:`.campaign`, :mod:`.jobs` and
  :mod:`.pools` (job pools), :mod:`.sweep`, :mod:`.report`, :mod:`.table_world`,
  :mod:`.plugins` (what sibling packages register);
- :mod:`.learning` (the BC policy and fine-tuning) and :mod:`.continuous` (Algorithm 2);
- :mod:`.ros` (nodes and ROS adapters), :mod:`.benchmarks` and :mod:`.cli`.

Worlds, policy kinds and commands of other packages arrive through :mod:`.plugins`.
"""

__version__ = "0.1.0"
