"""vlaops: robot demonstrations to a deployed pi0 policy.

Stages (one package each): ``data`` (raw demos → LeRobot dataset → norm stats), ``model`` (pi0 in
JAX/Flax), ``train``, ``sim`` (MuJoCo ALOHA), ``serve`` (Triton). ``storage`` owns every URI.
"""

__version__ = "0.1.0"
