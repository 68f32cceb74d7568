"""mmfusion: config-driven multimodal (text + image) training on OpenMMLab."""
import os

from setuptools import find_packages, setup


def version() -> str:
    scope = {}
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, 'mmfusion', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmfusion',
    version=version(),
    description='Config-driven multimodal (text + image) training on '
    'OpenMMLab: fusion blocks, classification, grounding, segmentation',
    long_description=open('README.md').read() if os.path.exists(
        'README.md') else '',
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
    include_package_data=True,
    install_requires=[
        'torch>=2.1',
        'mmcv>=2.0.0,<2.2.0',
        'mmengine>=0.10.0,<0.11',
        'mmdet>=3.1,<3.4',
        'mmsegmentation>=1.1,<1.3',
        'hydra-core>=1.3,<1.4',
        'omegaconf>=2.3,<2.4',
        'numpy>=1.23',
        'ftfy',
        'regex',
        'pillow',
        'tqdm',
    ],
    extras_require={'tests': ['pytest']},
    zip_safe=False,
)
