"""The simulated world: robosuite/MuJoCo scenes with in-place perturbations
(:mod:`.world`, :mod:`.perturb`, :mod:`.tasks`), scripted experts (:mod:`.experts`),
demonstration collection (:mod:`.demos`), the sim bridge node (:mod:`.sim_bridge_node`) and what
it registers with robomd_diagnoser (:mod:`.plugins`: the ``sim`` world type, the ``expert``
policy kind, the shipped Lift BC weights, ``collect-demos`` and ``bench sim``)."""
