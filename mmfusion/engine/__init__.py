from .hooks import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
from .loops import EpochBasedTrainLoop, IterBasedTrainLoop  # noqa: F401
from .runner import MMFusionRunner, NonFiniteWeightsError, build_runner  # noqa: F401,E501
