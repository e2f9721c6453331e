#!/usr/bin/env python3
"""Reference token ids from Hugging Face `tokenizers` for tests/test_tokenizer.c.

usage: tokenizer_ref.py OUT_DIR

Writes OUT_DIR/tokenizer_ref.txt and the tokenizer folders it refers to:
  - the real all-MiniLM-L6-v2 tokenizer.json ($SSNA_MODEL_DIR), untruncated and truncated;
  - OUT_DIR/wordpiece-flags: that tokenizer.json with clean_text, handle_chinese_chars and
    strip_accents off;
  - OUT_DIR/wordpiece-added: that tokenizer.json plus two added tokens (normalized + rstrip,
    raw + lstrip);
  - OUT_DIR/vocab-txt-uncased, OUT_DIR/vocab-txt-cased: its vocabulary written out as vocab.txt
    (the cased one with tokenizer_config.json do_lower_case=false);
  - OUT_DIR/bpe-roberta: a byte-level BPE trained here on the Scientific texts, saved as
    vocab.json + merges.txt (RoBERTa layout);
  - OUT_DIR/bpe-json: the same BPE as a tokenizer.json with add_prefix_space and <s> ... </s>;
  - OUT_DIR/bpe-chars-suffix, -prefix: character-level BPEs (Lowercase, WhitespaceSplit, [UNK])
    with an end-of-word suffix and fused unknowns, or a continuing-subword prefix.
Texts: every item text of Scientific.text and Games.item, hard cases, 3,000 seeded random texts
over all assigned code points, and invalid UTF-8 (given
to Hugging Face decoded with errors="replace", which is what the C side documents).

File format, one record per line:
  model <folder>\t<max_len>\t<label>     the tokenizer the following records use
  <text as hex bytes>\t<ids separated by spaces>
  end <number of records of this model>
Fails (exit 1) when tokenizers, the model folder or the data is missing.
"""
import json
import os
import random
import sys
import unicodedata

try:
    from tokenizers import (AddedToken, ByteLevelBPETokenizer, Tokenizer, models, normalizers,
                            pre_tokenizers, processors, trainers)
    from tokenizers.implementations import BertWordPieceTokenizer
except ImportError as e:
    sys.exit(f"FAIL: Hugging Face tokenizers is not importable ({e}); run ops/setup.sh to create .venv")

NO_TRUNCATION = 100000

HARD_CASES = [
    "This is an example sentence",
    "Café Ñandú Ångström naïve résumé ÉCOLE Œuvre ﬁancé Straße",
    "北京欢迎你 東京 서울 日本語のテキスト 𠀀𪜀𫠠 丽",
    "I ❤️ 🍕 and 👩‍👩‍👧 😀!! 🇫🇷 ✈︎",
    "a\x00b\x01c\x1fd\x7fe\u200bf\ufeffg\tx\ny\rz\x0bq\x0cw\x1ce\x85r\u2028t\u00a0u\u3000v\ufffdw",
    "x" * 500,
    "y" * 100 + " " + "z" * 101 + " " + "é" * 100 + " " + "é" * 101,
    "",
    "   \t\n  ",
    "Ελληνικά Русский ЁЖИК עברית العربية हिन्दी ไทย ქართული Հայերեն ΣΑΣ",
    "Hello!!!??? ...--- (([[{{}}]])) $100+ 50% #1 @home ~user `code` ^_^ |pipe| «quote» „x“ ¿qué? ¡sí!",
    "e\u0301 a\u0300\u0301 \u0344 Z\u0335\u0338 ǅ Ω K Å İstanbul ᾏ ǖ \u0301alone",
    "[CLS] hello [SEP][MASK] [unk] [UNK]x <s> </s> a <mask> b <pad>x",
    "I'm can't we've they'll he'd she's It'S ''s '",
    "  leading  and   trailing   \n\n tabs\t\there  ",
    "3.14159 1,000,000 ٣٤٥ ⅷ ² ½ 1st 2nd",
    "ＡＢＣ ｆｕｌｌｗｉｄｔｈ ｶﾀｶﾅ 한국어 텍스트입니다",
    "unaffable electroencephalographically antidisestablishmentarianism",
    " ".join(["lorem ipsum dolor sit amet"] * 150),
    "scientific" * 2000,  # one 20,000-letter word: BPE must stay fast on it
]

INVALID_UTF8 = [
    b"abc\xffdef",
    b"\xe2\x82",
    b"caf\xc3",
    b"\xed\xa0\x80 surrogate",
    b"\xf4\x90\x80\x80 past U+10FFFF",
    b"\xc0\xaf overlong",
    b"ok \xe2\x82\xac euro \xe2\x82",
    b"\xf0\x9f\x98 truncated emoji \xf0\x9f\x98\x80",
    b"\x80\x80\x80 lone continuations",
    b"\xfe\xff\xf5",
]

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def fuzz_texts(count, seed=7):
    """Seeded random texts over every assigned code point of Unicode (as this Python knows it),
    weighted towards ASCII, accented Latin, combining marks and whitespace/controls, with some
    bytes corrupted into invalid UTF-8."""
    rng = random.Random(seed)
    assigned = [c for c in range(0x110000)
                if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    marks = [c for c in assigned if unicodedata.category(chr(c)) == "Mn"]
    latin = list(range(0xC0, 0x250)) + list(range(0x1E00, 0x1F00)) + list(range(0x370, 0x530))
    spaces = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200B, 0x2028,
              0x3000, 0x1C, 0x00, 0xFFFD]
    texts = []
    for _ in range(count):
        out = []
        for _ in range(rng.randrange(0, 80)):
            r = rng.random()
            if r < 0.45:
                c = rng.randrange(0x20, 0x7F)
            elif r < 0.6:
                c = rng.choice(latin)
            elif r < 0.7:
                c = rng.choice(marks)
            elif r < 0.78:
                c = rng.choice(spaces)
            else:
                c = rng.choice(assigned)
            out.append(chr(c))
        data = bytearray("".join(out).encode("utf-8"))
        if data and rng.random() < 0.15:
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(0x80, 0x100)
        texts.append(bytes(data))
    return texts


def read_texts(path, expected):
    if not os.path.isfile(path):
        sys.exit(f"FAIL: data file {path} is missing")
    texts = []
    with open(path, "rb") as f:
        f.readline()  # header
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            _, _, text = line.partition(b"\t")
            texts.append(text)
    if len(texts) != expected:
        sys.exit(f"FAIL: {path}: {len(texts)} texts, expected {expected}")
    return texts


class Writer:
    def __init__(self, path):
        self.f = open(path, "w", encoding="ascii")

    def section(self, folder, max_len, label, tok, texts):
        """texts: bytes; Hugging Face sees them decoded with errors="replace"."""
        if max_len == NO_TRUNCATION:
            tok.no_truncation()
        else:
            tok.enable_truncation(max_length=max_len)
        tok.no_padding()
        encs = tok.encode_batch([t.decode("utf-8", "replace") for t in texts])
        self.f.write(f"model {folder}\t{max_len}\t{label}\n")
        for t, e in zip(texts, encs):
            self.f.write(t.hex() + "\t" + " ".join(map(str, e.ids)) + "\n")
        self.f.write(f"end {len(texts)}\n")


def bpe_reference(folder):
    tok = ByteLevelBPETokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
    tok.add_special_tokens(SPECIALS[:4] + [AddedToken("<mask>", lstrip=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")))
    return tok


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.abspath(sys.argv[1])
    model_dir = os.environ.get("SSNA_MODEL_DIR", "")
    data_dir = os.environ.get("SSNA_DATA_DIR", "")
    tok_json = os.path.join(model_dir, "tokenizer.json")
    if not os.path.isfile(tok_json):
        sys.exit(f"FAIL: {tok_json} is missing (SSNA_MODEL_DIR); run ops/setup.sh")
    sci = read_texts(os.path.join(data_dir, "amazon-scientific", "Scientific.text"), 4385)
    games = read_texts(os.path.join(data_dir, "amazon-games", "Games.item"), 16859)
    hard = [s.encode("utf-8") for s in HARD_CASES] + INVALID_UTF8 + fuzz_texts(3000)
    os.makedirs(out, exist_ok=True)
    w = Writer(os.path.join(out, "tokenizer_ref.txt"))

    # 1. the real MiniLM tokenizer.json
    minilm = Tokenizer.from_file(tok_json)
    w.section(model_dir, NO_TRUNCATION, "minilm tokenizer.json", minilm, hard + sci + games)
    w.section(model_dir, 16, "minilm tokenizer.json, max_len 16", minilm, hard + sci)
    w.section(model_dir, 128, "minilm tokenizer.json, max_len 128", minilm, hard)

    # 1b. added tokens beyond the vocabulary: one matched after normalization (with rstrip), one
    # on the raw text (with lstrip)
    folder = os.path.join(out, "wordpiece-added")
    os.makedirs(folder, exist_ok=True)
    added = Tokenizer.from_file(tok_json)
    added.add_tokens([AddedToken("ÜberToken", normalized=True, rstrip=True),
                      AddedToken("<ent>", normalized=False, lstrip=True),
                      AddedToken("東京Tower", normalized=True)])
    added.save(os.path.join(folder, "tokenizer.json"))
    added = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    extra = [s.encode("utf-8") for s in ["see ÜBERTOKEN  now", "ubertokenx uber token", "Übertoken",
                                         "a   <ent> b<ent>c", "<ENT> <ent", "x<ent>ÜberToken<ent>",
                                         "visit 東京TOWER, 東京 Tower"]]
    w.section(folder, NO_TRUNCATION, "tokenizer.json with added tokens", added, extra + hard)

    # 1c. the normalizer's flags the other way round (lower-case without accent stripping)
    folder = os.path.join(out, "wordpiece-flags")
    os.makedirs(folder, exist_ok=True)
    config = json.load(open(tok_json, encoding="utf-8"))
    config["normalizer"] = {"type": "BertNormalizer", "clean_text": False,
                            "handle_chinese_chars": False, "strip_accents": False,
                            "lowercase": True}
    json.dump(config, open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8"))
    flags = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    w.section(folder, NO_TRUNCATION, "tokenizer.json, no clean/CJK/strip", flags, hard + sci)

    # 2. the same vocabulary as vocab.txt, lower-cased (default) and cased
    vocab = json.load(open(tok_json, encoding="utf-8"))["model"]["vocab"]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id))), "vocabulary ids are not contiguous"
    for cased in (False, True):
        folder = os.path.join(out, "vocab-txt-cased" if cased else "vocab-txt-uncased")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
            f.writelines(tok + "\n" for tok, _ in by_id)
        cfg = os.path.join(folder, "tokenizer_config.json")
        if cased:
            json.dump({"do_lower_case": False}, open(cfg, "w"))
        elif os.path.exists(cfg):
            os.remove(cfg)
        ref = BertWordPieceTokenizer(os.path.join(folder, "vocab.txt"), lowercase=not cased)
        w.section(folder, NO_TRUNCATION, "vocab.txt " + ("cased" if cased else "uncased"), ref,
                  hard + sci)

    # 3. byte-level BPE trained on the Scientific texts, RoBERTa files
    folder = os.path.join(out, "bpe-roberta")
    os.makedirs(folder, exist_ok=True)
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator([t.decode("utf-8") for t in sci], vocab_size=3000, min_frequency=2,
                                special_tokens=SPECIALS, show_progress=False)
    trainer.save_model(folder)
    bpe = bpe_reference(folder)
    if bpe.get_vocab_size() < 1000:
        sys.exit(f"FAIL: the trained BPE has only {bpe.get_vocab_size()} tokens")
    w.section(folder, NO_TRUNCATION, "byte-level BPE vocab.json + merges.txt", bpe,
              hard + sci + games)
    w.section(folder, 16, "byte-level BPE vocab.json + merges.txt, max_len 16", bpe, hard)

    # 4. the same BPE as tokenizer.json, with a prefix space
    folder = os.path.join(out, "bpe-json")
    os.makedirs(folder, exist_ok=True)
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.save(os.path.join(folder, "tokenizer.json"))
    bpe = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    w.section(folder, NO_TRUNCATION, "byte-level BPE tokenizer.json, add_prefix_space", bpe,
              hard + sci)

    # 5. character-level BPE (no byte level): unknown characters, subword prefix / word suffix
    for variant, kwargs in (("suffix", {"end_of_word_suffix": "</w>", "fuse_unk": True}),
                            ("prefix", {"continuing_subword_prefix": "##", "fuse_unk": False})):
        folder = os.path.join(out, "bpe-chars-" + variant)
        os.makedirs(folder, exist_ok=True)
        tok = Tokenizer(models.BPE(unk_token="[UNK]", **kwargs))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer_args = {k: v for k, v in kwargs.items() if k != "fuse_unk"}
        tok.train_from_iterator([t.decode("utf-8") for t in sci],
                                trainers.BpeTrainer(vocab_size=2000, show_progress=False,
                                                    special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                                    **trainer_args))
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
        tok.save(os.path.join(folder, "tokenizer.json"))
        tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        w.section(folder, NO_TRUNCATION, f"character BPE tokenizer.json, {variant}", tok, hard + sci)
    w.f.close()
    print(f"wrote {out}/tokenizer_ref.txt")


if __name__ == "__main__":
    main()
