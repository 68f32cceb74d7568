"""Augmentations that rewrite the text to stay true to the changed image:
``RandomFlip`` + ``SwapWordsOnFlip`` and ``RandomColourPermutation``."""
import numpy as np
import pytest

from mmfusion.datasets.shapes.scene import COLOUR_RGB
from mmfusion.registry import TRANSFORMS


def _flip_pipeline(direction):
    return [TRANSFORMS.build(dict(type='RandomFlip', prob=1.0,
                                  direction=direction)),
            TRANSFORMS.build(dict(type='SwapWordsOnFlip'))]


def _run(transforms, results):
    for t in transforms:
        results = t(results)
    return results


def test_horizontal_flip_swaps_left_and_right_only():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = _run(_flip_pipeline('horizontal'), dict(
        img=img.copy(), img_shape=(2, 3),
        text='Is the red circle left of the square, or right? leftover'))
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    # Both words at once (no left -> right -> left), case kept, and a word
    # that merely starts with one of them untouched.
    assert out['text'] == ('Is the red circle right of the square, or left? '
                           'leftover')


def test_vertical_flip_swaps_above_and_below():
    out = _run(_flip_pipeline('vertical'), dict(
        img=np.zeros((4, 4, 3), np.uint8), img_shape=(4, 4),
        text='is the circle above the square left of it?'))
    assert out['text'] == 'is the circle below the square left of it?'


def test_unflipped_samples_and_missing_text_pass_unchanged():
    swap = TRANSFORMS.build(dict(type='SwapWordsOnFlip'))
    text = 'is the circle left of the square?'
    assert swap(dict(text=text, flip=False))['text'] == text
    assert swap(dict(text=text))['text'] == text
    assert swap(dict(text=None, flip=True,
                     flip_direction='horizontal'))['text'] is None
    custom = TRANSFORMS.build(dict(type='SwapWordsOnFlip', pairs=dict(
        horizontal=[['west', 'east']])))
    assert custom(dict(text='west of left', flip=True,
                       flip_direction='horizontal'))['text'] == 'east of left'


@pytest.mark.parametrize('pairs, match', [
    ([['left', 'right']], 'must map a flip direction'),
    ({'horizontal': [['left']]}, 'two non-empty words'),
    ({'horizontal': [['left', 'right'], ['left', 'west']]},
     "'left' is in more than one pair"),
])
def test_bad_word_pairs_are_refused(pairs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        TRANSFORMS.build(dict(type='SwapWordsOnFlip', pairs=pairs))


def _swatches(names, order):
    """A 1 x N image of the named colours in ``order`` ('bgr' or 'rgb')."""
    px = [COLOUR_RGB[n] for n in names]
    img = np.array([px], np.uint8)
    return img[..., ::-1].copy() if order == 'bgr' else img


@pytest.mark.parametrize('order', ['bgr', 'rgb'])
def test_colour_words_follow_the_pixels(order):
    names = list(COLOUR_RGB)
    perm = TRANSFORMS.build(dict(type='RandomColourPermutation',
                                 colours=COLOUR_RGB, channel_order=order))
    # The benchmark's six colours are closed under every channel swap.
    assert perm.num_permutations == 6
    seen = set()
    np.random.seed(0)
    for _ in range(60):
        text = ' '.join(names).capitalize() + '?'
        out = perm(dict(img=_swatches(names, order), text=text))
        words = out['text'].rstrip('?').lower().split()
        # Pixel i was colour names[i]; it now has the colour the rewritten
        # text names at position i.
        np.testing.assert_array_equal(out['img'],
                                      _swatches(words, order))
        assert out['text'][0].isupper()  # case pattern kept
        assert sorted(words) == sorted(names)  # a permutation of colours
        seen.add(tuple(out['colour_permutation']))
    assert len(seen) == 6  # every permutation is drawn


def test_colour_permutation_leaves_other_words_and_prob_zero_alone():
    perm = TRANSFORMS.build(dict(type='RandomColourPermutation',
                                 colours=COLOUR_RGB, prob=0.0))
    img = _swatches(['red', 'cyan'], 'bgr')
    out = perm(dict(img=img.copy(), text='are there two reddish circles?'))
    np.testing.assert_array_equal(out['img'], img)
    assert out['text'] == 'are there two reddish circles?'
    assert out['colour_permutation'] == [0, 1, 2]


def test_colours_not_closed_under_channel_swaps_are_refused():
    with pytest.raises(ValueError, match='no channel permutation maps'):
        TRANSFORMS.build(dict(type='RandomColourPermutation', colours=dict(
            red=[255, 0, 0], orange=[255, 128, 0])))
    with pytest.raises(ValueError, match=r"colours\['red'\] must be"):
        TRANSFORMS.build(dict(type='RandomColourPermutation',
                              colours=dict(red=[255, 0])))
