import json

import pytest
import torch
from mmengine.registry import init_default_scope

from mmfusion.registry import TASK_UTILS

TEXTS = ['Is the cube red?', 'What color is the ball?', 'the cube is red',
         None, 'Is there a ball?']


def build(**kwargs):
    init_default_scope('mmfusion')
    return TASK_UTILS.build(dict(type='VocabTokenizer', **kwargs))


def test_fit_is_deterministic():
    a = build().fit(TEXTS)
    b = build().fit(list(reversed(TEXTS)))
    assert a.vocab == b.vocab
    assert a.vocab[:2] == ['<pad>', '<unk>']
    # Most frequent first, ties alphabetical: 'is' x4, 'the' x3, '?' x3.
    assert a.vocab[2:5] == ['is', '?', 'the']
    assert a.vocab_size == len(a.vocab)
    assert a.is_fitted


def test_vocab_cap_and_min_freq():
    tok = build(max_vocab_size=5).fit(TEXTS)
    assert tok.vocab_size == 5
    tok = build(min_freq=3).fit(TEXTS)
    assert set(tok.vocab[2:]) == {'is', 'the', '?'}


def test_unknown_words_and_punctuation():
    tok = build().fit(TEXTS)
    ids, mask = tok.encode(['Is the zebra red?'])
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert ids.shape == (1, 5)
    assert ids[0, 2].item() == tok.unk_id
    assert tok.decode(ids[0]) == 'is the red ?'
    assert tok.decode(ids[0], skip_special=False) == 'is the <unk> red ?'


def test_padding_truncation_and_absent_text():
    tok = build(max_length=4).fit(TEXTS)
    ids, mask = tok.encode(['the cube', 'what color is the ball ?', None, ''])
    assert ids.shape == (4, 4)
    assert mask.tolist() == [[True, True, False, False], [True] * 4,
                             [False] * 4, [False] * 4]
    assert (ids[~mask] == tok.pad_id).all()
    ids, mask = tok.encode([None])
    assert ids.shape == (1, 1) and not mask.any()


def test_not_fitted_error():
    tok = build()
    assert not tok.is_fitted
    with pytest.raises(RuntimeError, match='fit it on the training texts'):
        tok.encode(['a'])


def test_state_dict_round_trip():
    tok = build(max_length=7, lowercase=False).fit(TEXTS)
    state = tok.state_dict()
    restored = build()
    restored.load_state_dict(json.loads(json.dumps(state)))
    assert restored.vocab == tok.vocab
    assert restored.max_length == 7 and restored.lowercase is False
    for a, b in zip(tok.encode(TEXTS), restored.encode(TEXTS)):
        assert torch.equal(a, b)
    # Unfitted state is plain data too.
    json.dumps(build().state_dict())


def test_given_vocab():
    tok = build(vocab=['red', 'cube'])
    assert tok.vocab == ['<pad>', '<unk>', 'red', 'cube']
    assert tok.encode(['red cube'])[0].tolist() == [[2, 3]]
