"""The real UR5e campaign: camera (:mod:`.camera`), policy execution over ur_rtde with safety
limits (:mod:`.runner`, :mod:`.safety`, :mod:`.hardware`, fakes in :mod:`.fake`), success
detection (:mod:`.detector`), operator prompts (:mod:`.prompt`), their nodes, the graph
(:mod:`.bringup`) and the ``bringup-ur5e`` and ``operator`` commands (:mod:`.cli`)."""
