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


def test_split_suffixes_share_the_stem_only_when_it_is_a_word():
    texts = ['are there two circles?', 'is the circle red?',
             'are there three red shapes?', 'is there one red shape?',
             'this is glass']
    tok = build(split_suffixes=["s"]).fit(texts)
    assert tok.tokenize('two circles') == ['two', 'circle', '##s']
    assert tok.tokenize('red shapes') == ['red', 'shape', '##s']
    # No word 'i', 'thi' or 'glas' in the texts: kept whole.
    assert tok.tokenize('this is glass') == ['this', 'is', 'glass']
    # A word fit never saw is not split (nor known).
    assert tok.tokenize('squares') == ['squares']
    ids, _ = tok.encode(['circles', 'circle'])
    assert ids[0, 0] == ids[1, 0] == tok.token_to_id('circle')
    assert ids[0, 1] == tok.token_to_id('##s') != tok.unk_id
    plain = build().fit(texts)
    assert plain.tokenize('two circles') == ['two', 'circles']
    # The splits travel in the state (a checkpoint's meta): same ids.
    again = build()
    again.load_state_dict(tok.state_dict())
    assert again.split_suffixes == ('s', )
    torch.testing.assert_close(again.encode(['two circles'])[0],
                               tok.encode(['two circles'])[0])
    # A state from before the option loads as no splitting.
    old = plain.state_dict()
    del old['split_suffixes'], old['splits']
    again.load_state_dict(old)
    assert again.tokenize('two circles') == ['two', 'circles']
    with pytest.raises(ValueError, match='split_suffixes'):
        build(split_suffixes=["##"])
