"""Draw the BERT chapter's diagrams as deterministic SVG files in img/."""
import io
import json
import pathlib
import re

import matplotlib

matplotlib.use('svg')
import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch

import word_count

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMG_DIR = ROOT / 'img'
FONTS = ['DejaVu Sans', 'Helvetica Neue', 'Arial', 'Helvetica']
plt.rcParams.update({
    'svg.hashsalt': 'd2l-bert-figures', 'svg.fonttype': 'none',
    'font.family': 'sans-serif', 'font.sans-serif': FONTS,
    'mathtext.fontset': 'dejavusans'})

# Light fills under near-black text; every pair is well above 4.5:1.
INK, GREY = '#1a1a1a', '#4d4d4d'
BLUE, ORANGE, GREEN = '#dceaf7', '#fde3c8', '#dcefd6'
PURPLE, YELLOW, PAD = '#e6def3', '#fff1a8', '#ececec'
EDGE = {BLUE: '#2a5d8f', ORANGE: '#a4541a', GREEN: '#3b7a2f',
        PURPLE: '#5f4690', YELLOW: '#8a6d00', PAD: '#6b6b6b', 'white': INK}
PX = 0.75  # font sizes below are in points; one CSS pixel is 0.75 pt
SMALL, TEXT, BIG = 11 * PX, 12 * PX, 13.5 * PX


def canvas(width, height):
    """A figure of width x height CSS pixels, drawn in pixels, y down."""
    fig = plt.figure(figsize=(width / 96, height / 96))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis('off')
    return fig, ax


def label(ax, x, y, text, size=TEXT, color=INK, ha='center', **kw):
    """Text centred vertically on (x, y), one SVG text element per line."""
    lines = text.split('\n')  # so that each line keeps its own anchor
    step = 1.3 * size / PX
    for i, line in enumerate(lines):
        ax.text(x, y + (i - (len(lines) - 1) / 2) * step, line, fontsize=size,
                color=color, ha=ha, va='center', **kw)


def box(ax, x, y, w, h, text='', fill='white', size=TEXT, dashed=False,
        lw=1.2, **kw):
    """A rounded box with top-left corner (x, y) and centred text."""
    ax.add_patch(FancyBboxPatch(
        (x, y), w, h, boxstyle='round,pad=0,rounding_size=5',
        facecolor='none' if dashed else fill,
        edgecolor=EDGE.get(fill, INK) if not dashed else GREY, lw=lw,
        linestyle=(0, (4, 3)) if dashed else '-'))
    if text:
        label(ax, x + w / 2, y + h / 2, text, size, **kw)


def arrow(ax, points, color=INK, lw=1.2, dashed=False):
    """A polyline through points whose last segment ends in an arrowhead."""
    style = (0, (4, 3)) if dashed else '-'
    xs, ys = zip(*points)
    if len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], color=color, lw=lw, linestyle=style,
                solid_capstyle='butt')
    ax.annotate('', xy=points[-1], xytext=points[-2], arrowprops={
        'arrowstyle': '-|>', 'color': color, 'lw': lw, 'shrinkA': 0,
        'shrinkB': 0, 'mutation_scale': 11, 'linestyle': style})


def add_node(ax, x, y, r=11):
    """The circled plus of a residual addition, centred on (x, y)."""
    ax.add_patch(Circle((x, y), r, facecolor='white', edgecolor=INK, lw=1.2))
    label(ax, x, y - 0.5, '+', BIG, weight='bold')


def save(fig, name, title):
    """Write img/name with a <title>, a font fallback list and no date."""
    buffer = io.StringIO()
    fig.savefig(buffer, format='svg', metadata={'Date': None})
    plt.close(fig)
    # Mathtext names only its own font; give it the fallbacks of the text
    fallbacks = ', '.join(f"'{font}'" for font in FONTS) + ', sans-serif'
    svg = buffer.getvalue().replace("'DejaVu Sans'\"", fallbacks + '"')
    start = svg.index('>', svg.index('<svg')) + 1
    svg = f'{svg[:start]}\n <title>{title}</title>{svg[start:]}'
    IMG_DIR.mkdir(exist_ok=True)
    (IMG_DIR / name).write_text(svg, encoding='utf-8')


def embedding(token):
    """Mathtext for the embedding E of a token, <cls> and <sep> unspaced."""
    name = token.strip('<>')
    if name != token:  # math spacing around < and > would be too wide
        return rf'$E_{{\!<\!\!\mathrm{{{name}}}\!\!>}}$'
    return rf'$E_{{\mathrm{{{name}}}}}$'


def segment_brackets(ax, spans, x0, pitch, w, ys, text_y):
    """Bracket tokens first..last of each (text, first, last) in spans."""
    foot, bar = ys
    for text, first, last in spans:
        left, right = x0 + first * pitch, x0 + last * pitch + w
        ax.plot([left, left, right, right], [foot, bar, bar, foot], color=GREY,
                lw=1)
        label(ax, (left + right) / 2, text_y, text, SMALL, GREY)


def embedding_columns(ax, tokens, segments, x0, pitch, w):
    """Each token's box above its token, segment and position embeddings."""
    for i, (token, segment) in enumerate(zip(tokens, segments)):
        x, cx = x0 + i * pitch, x0 + i * pitch + w / 2
        box(ax, x, 48, w, 32, token)
        box(ax, x, 102, w, 32, embedding(token), YELLOW, size=14 * PX)
        box(ax, x, 164, w, 32, '$E_B$' if segment else '$E_A$',
            ORANGE if segment else BLUE, size=14 * PX)
        box(ax, x, 226, w, 32, f'$E_{{{i}}}$', GREEN, size=14 * PX)
        for y in (149, 211):
            label(ax, cx, y, '+', BIG, weight='bold')


def row_steps(ax, steps, x0, pitch, w, count):
    """Full-width boxes (name, text, fill, top, height), an arrow per column."""
    width, bottom = (count - 1) * pitch + w, 262
    for name, text, fill, top, height in steps:
        for i in range(count):
            cx = x0 + i * pitch + w / 2
            arrow(ax, [(cx, bottom), (cx, top)])
        label(ax, 8, top + height / 2, name, ha='left', weight='bold')
        box(ax, x0, top, width, height, text, fill, SMALL)
        bottom = top + height


def bert_input():
    """(a) A sentence pair as the normalized sum of three embeddings per token."""
    tokens = ['<cls>', 'a', 'crane', 'driver', 'came', '<sep>', 'he',
              'just', 'left', '<sep>']
    segments = [0] * 6 + [1] * 4
    fig, ax = canvas(700, 436)
    x0, pitch, w = 118, 56, 50
    rows = {'Tokens': 48, 'Token\nembeddings': 102, 'Segment\nembeddings': 164,
            'Position\nembeddings': 226}
    for name, y in rows.items():
        label(ax, 8, y + 16, name, ha='left', weight='bold')
    segment_brackets(ax, (('first sentence: segment 0', 0, 5),
                          ('second sentence: segment 1', 6, 9)),
                     x0, pitch, w, (34, 28), 16)
    embedding_columns(ax, tokens, segments, x0, pitch, w)
    steps = (('Layer norm', "each token's sum, normalized over its num_hiddens "
              'features, then a learned scale and shift', GREEN, 290, 26),
             ('Dropout', 'in training only: features zeroed with probability '
              'dropout, the rest scaled by 1 / (1 − dropout)', 'white', 334, 26),
             ('Encoder\ninput', 'input of the Transformer encoder blocks: one '
              'vector of num_hiddens features\nper token, shape (batch_size, '
              '10, num_hiddens); all three embeddings are learned', 'white',
              378, 46))
    row_steps(ax, steps, x0, pitch, w, len(tokens))
    save(fig, 'bert-input-embeddings.svg', "BERT's input representation of a pair")


def encoder_block():
    """(b) One post-LN Transformer encoder block, as EncoderBlock builds it."""
    fig, ax = canvas(700, 760)
    cx, lane, bw = 305, 32, 230  # main axis, residual lane, box width
    heads = {'head 1': 70, 'head h': 370}
    box(ax, 56, 56, 498, 240, dashed=True, lw=1)
    label(ax, 562, 176, 'MultiHeadAttention\n(self-attention:\n'
          'Q = K = V = X)', SMALL, GREY, ha='left')
    box(ax, 70, 12, 470, 30, 'input X: (batch_size, seq_len, num_hiddens)',
        'white', weight='bold')
    for name, x in heads.items():
        label(ax, x + 85, 94, name, SMALL, GREY)
        for j, w_name in enumerate('qkv'):
            wx = x + j * 59
            arrow(ax, [(wx + 26, 42), (wx + 26, 108)])
            box(ax, wx, 108, 52, 28, f'$W_{w_name}$', PURPLE, size=14 * PX)
            arrow(ax, [(wx + 26, 136), (wx + 26, 160)])
        box(ax, x, 160, 170, 48, 'scaled dot-product\nattention, masked '
            'softmax', BLUE, size=SMALL)
        arrow(ax, [(x + 85, 208), (x + 85, 226)])
    label(ax, cx, 184, '· · ·', BIG, weight='bold')
    box(ax, cx - 50, 110, 100, 26, 'valid_lens', 'white', SMALL)
    arrow(ax, [(cx - 34, 136), (240, 160)])
    arrow(ax, [(cx + 34, 136), (370, 160)])
    box(ax, 70, 226, 470, 26, 'concatenate the h head outputs '
        '(num_hiddens / h features each)', PURPLE, SMALL)
    box(ax, cx - bw / 2, 262, bw, 26, '$W_o$: Dense(num_hiddens)', PURPLE)
    steps = [('dropout', 'white', 312), ('LayerNorm', GREEN, 386),
             ('Dense(ffn_num_hiddens)', ORANGE, 456), ('GELU', ORANGE, 496),
             ('Dense(num_hiddens)', ORANGE, 536), ('dropout', 'white', 586),
             ('LayerNorm', GREEN, 660)]
    for text, fill, y in steps:
        box(ax, cx - bw / 2, y, bw, 26, text, fill, SMALL)
    for top, bottom in ((288, 312), (482, 496), (522, 536), (562, 586)):
        arrow(ax, [(cx, top), (cx, bottom)])
    for y_add, y_from, y_to in ((358, 338, 386), (632, 612, 660)):
        add_node(ax, cx, y_add)
        arrow(ax, [(cx, y_from), (cx, y_add - 11)])
        arrow(ax, [(cx, y_add + 11), (cx, y_to)])
    arrow(ax, [(70, 27), (lane, 27), (lane, 358), (cx - 11, 358)])
    arrow(ax, [(cx, 412), (cx, 456)])
    arrow(ax, [(cx, 432), (lane, 432), (lane, 632), (cx - 11, 632)])
    ax.plot([cx], [432], 'o', color=INK, ms=4)
    label(ax, lane + 6, 344, 'residual', SMALL, GREY, ha='left')
    label(ax, lane + 6, 618, 'residual', SMALL, GREY, ha='left')
    post_ln = 'post-LN:\nadd, then normalize'
    for top, bottom, text in ((304, 420, post_ln), (448, 570,
                              'PositionWiseFFN'), (578, 694, post_ln)):
        box(ax, cx - bw / 2 - 14, top, bw + 28, bottom - top, dashed=True,
            lw=1)
        label(ax, cx + bw / 2 + 22, top + 22, text, SMALL, GREY,
              ha='left')
    label(ax, cx + bw / 2 + 22, 509, 'in between: (batch_size,\nseq_len, '
          'ffn_num_hiddens)', SMALL, GREY, ha='left')
    arrow(ax, [(cx, 686), (cx, 716)])
    box(ax, 70, 716, 470, 30, 'output: (batch_size, seq_len, num_hiddens), '
        'the shape of X', 'white', weight='bold')
    save(fig, 'encoder-block.svg', 'One post-LN Transformer encoder block')


def pretraining_example():
    """(c) A sentence pair as the seven arrays of one pretraining example."""
    pair = ['<cls>', 'the', 'cat', 'sat', 'on', 'the', 'mat', '<sep>', 'it',
            'was', 'warm', '<sep>'] + ['<pad>'] * 4
    masked = dict(enumerate(pair)) | {3: 'the', 4: '<mask>'}
    segments = [0] * 8 + [1] * 4 + [0] * 4
    fig, ax = canvas(700, 494)
    top, row = 66, 22
    columns = (('position', 34, 60), ('segments', 100, 68),
               ('before\nmasking', 174, 76), ('tokens\n(masked)', 256, 84))
    for text, x, w in columns:
        label(ax, x + w / 2, top - 22, text, SMALL,
              GREY if 'before' in text else INK,
              weight=None if 'before' in text else 'bold')
    for p, token in enumerate(pair):
        y = top + p * row
        fill = PAD if p >= 12 else ORANGE if segments[p] else BLUE
        changed = masked[p] != token
        cells = (str(p), str(segments[p]), token, masked[p])
        for (_, x, w), text in zip(columns, cells):
            yellow = changed and x == 256
            box(ax, x, y + 1, w, row - 2, text, YELLOW if yellow else fill,
                SMALL, weight='bold' if yellow else None)
    bracket_x = 26
    ax.plot([bracket_x + 5, bracket_x, bracket_x, bracket_x + 5],
            [top + 1, top + 1, top + 12 * row - 1, top + 12 * row - 1],
            color=INK, lw=1.2)
    label(ax, 14, top + 6 * row, 'valid_lens = 12 (non-pad positions)', SMALL,
          rotation=90)
    label(ax, 362, 60, "sentence A: 'the cat sat on the mat'\nsentence B: "
          "'it was warm', the sentence after A", SMALL, ha='left')
    for p, text in ((3, "slot 1: 'sat' became a random word"),
                    (4, "slot 0: 'on' became <mask>")):
        arrow(ax, [(372, top + p * row + 11), (344, top + p * row + 11)])
        label(ax, 378, top + p * row + 11, text, SMALL, ha='left')
    sx, sy = 362, 226  # the slot arrays
    label(ax, sx, sy - 34, 'prediction slots: round(0.15 × 16) = 2', SMALL,
          weight='bold', ha='left')
    for j, slot in enumerate(('slot 0', 'slot 1')):
        label(ax, sx + 148 + j * 80, sy - 12, slot, SMALL, GREY)
    slot_rows = (('pred_positions', '4', '3'), ('mlm_weights', '1.0', '1.0'),
                 ('mlm_labels', "11 ('on')", "10 ('sat')"))
    for i, (name, *values) in enumerate(slot_rows):
        y = sy + i * 26
        label(ax, sx, y + 11, name, SMALL, ha='left', weight='bold')
        for j, value in enumerate(values):
            box(ax, sx + 110 + j * 80, y, 76, 22, value, YELLOW, SMALL)
    notes = (('num_preds = max(1, round(0.15 × 12)) = 2 positions,',
              'drawn among the words, never <cls>, <sep>, <pad>.'),
             ('A chosen token becomes <mask> 80% of the time, a',
              'random word 10%, and stays unchanged 10%; its',
              'label is the original token id.'),
             ('Unused slots (none here; a pair of valid length ≤ 9',
              'uses one) get position 0, label 0 and weight 0.'))
    for y, note in zip((324, 372, 424), notes):
        label(ax, sx, y, '\n'.join(note), SMALL, ha='left')
    box(ax, sx, 454, 300, 28, 'nsp_labels = 1: sentence B follows A',
        'white', SMALL, weight='bold')
    save(fig, 'pretraining-example.svg',
         'A sentence pair as the seven arrays of a pretraining example')


def data_parallel_step():
    """(d) One data-parallel training step on two devices."""
    fig, ax = canvas(700, 530)
    box(ax, 170, 12, 360, 44, 'batch of 512 pairs (the seven arrays),\n'
        'in host memory', 'white', weight='bold')
    box(ax, 262, 100, 176, 150, "whole batch's totals,\nread on the host:\n"
        '\nmlm_total = sum of\nmlm_weights over all\n512 pairs (the real '
        'slots)\n\nnsp_total = 512 pairs', YELLOW, SMALL)
    arrow(ax, [(350, 56), (350, 100)])
    for i, x in enumerate((40, 450)):
        cx, w, k = x + 105, 210, '₀₁'[i]
        arrow(ax, [(300 + 100 * i, 56), (cx, 88)])
        box(ax, x, 88, w, 30, f'device {i}: 256 pairs', 'white',
            weight='bold')
        box(ax, x, 142, w, 30, 'copy of the parameters', PURPLE, SMALL)
        box(ax, x, 196, w, 44, f'forward: MLM sum{k}, NSP sum{k}\n'
            '(summed cross-entropies)', BLUE, SMALL)
        box(ax, x, 276, w, 44, f'loss{k} = MLM sum{k} / mlm_total\n'
            f'+ NSP sum{k} / nsp_total', ORANGE, SMALL)
        box(ax, x, 354, w, 30, f'backward: gradient g{k}', GREEN, SMALL)
        for top, bottom in ((118, 142), (172, 196), (240, 276), (320, 354),
                            (384, 418)):
            arrow(ax, [(cx, top), (cx, bottom)])
        near, far = (x + w, x) if i == 0 else (x, x + w)  # centre, margin
        column, margin = (300, 20) if i == 0 else (400, 680)
        arrow(ax, [(column, 250), (column, 298), (near, 298)])
        arrow(ax, [(far, 442), (margin, 442), (margin, 157), (far, 157)],
              dashed=True)
    box(ax, 40, 418, 620, 48, 'trainer.step(1): the kvstore adds the '
        'gradients, g = g₀ + g₁,\nand Adam applies the same update to every '
        'copy of the parameters', GREEN)
    label(ax, 350, 496, "Dividing by the whole batch's totals, not the shard's, "
          "makes g the gradient of the\nbatch's mean loss however the batch "
          'is split (511 pairs split as 256 + 255).\nDashed arrows: the '
          'updated parameters, the same on both devices.', SMALL, GREY)
    save(fig, 'data-parallel-step.svg',
         'One data-parallel training step on two devices')


SECTIONS = {  # what each section builds, in the order of the chapter's toc
    'tools': ('Tools', 'devices, Timer, Animator, tokenize, Vocab,\n'
              'verified downloads (DATA_HUB)'),
    'transformer-encoder': ('The Transformer\nEncoder',
                            'masked softmax, scaled dot-product attention,\n'
                            'multi-head attention, position-wise FFN,\n'
                            'LayerNorm, EncoderBlock'),
    'bert-model': ('The BERT Model', 'input representation, BERTEncoder,\n'
                   'MaskLM, NextSentencePred, BERTModel'),
    'bert-dataset': ('The Dataset for\nPretraining BERT',
                     'WikiText-2, sentence pairs, packing,\n'
                     'masking, load_data_wiki'),
    'bert-pretraining': ('Pretraining BERT',
                         'the loss, the multi-device step, the schedule,\n'
                         'train_bert, held-out scores and baselines'),
    'bert-snli': ('Fine-Tuning\non SNLI', 'load_data_snli, BERTClassifier,\n'
                  'a bag-of-words baseline, what\npretraining bought'),
    'bert-distributed': ('Pretraining beyond\nOne Machine\n(optional)',
                         'a parameter-server job: workers with\n'
                         'their own shards, checkpoints'),
}


def code_cells(section):
    """The code cells of chapter_bert/section.md."""
    markdown = (ROOT / 'chapter_bert' / f'{section}.md').read_text(
        encoding='utf-8')
    return re.findall(r'^```\{\.python \.input\}\n(.*?)^```', markdown,
                      re.S | re.M)


def saved_names(section):
    """The functions, classes and constants a section saves into d2l."""
    cells = [c for c in code_cells(section) if '#@save' in c]
    return {name for c in cells
            for name in re.findall(r'^(?:def |class )?(\w+)\b(?=[ (:=])', c,
                                   re.M)} - {'d2l', 'import', 'from'}


def chapter_uses():
    """Pairs (i, j): section j's code uses a name that section i saved."""
    order = word_count.sections()[1:]
    saved = [saved_names(section) for section in order]
    used = [set(re.findall(r'd2l\.(\w+)', '\n'.join(code_cells(section))))
            for section in order]
    return order, [(i, j) for j in range(len(order)) for i in range(j)
                   if used[j] & saved[i]]


def chapter_map():
    """(e) The chapter's sections, what each builds, arrows for what each uses."""
    order, uses = chapter_uses()
    assert set(order) == set(SECTIONS), 'SECTIONS must follow the toc'
    left, width, height, pitch = 60, 540, 78, 100
    fig, ax = canvas(720, 40 + len(order) * pitch)
    fills = (BLUE, PURPLE, ORANGE, GREEN, YELLOW, 'white', PAD)
    ys = [12 + i * pitch for i in range(len(order))]
    for i, section in enumerate(order):
        title, builds = SECTIONS[section]
        box(ax, left, ys[i], width, height, fill=fills[i],
            dashed=section == 'bert-distributed')
        label(ax, left + 12, ys[i] + height / 2, f'{i + 1}', 20 * PX,
              weight='bold', ha='left')
        label(ax, left + 38, ys[i] + height / 2, title, TEXT, weight='bold',
              ha='left')
        label(ax, left + 200, ys[i] + height / 2, 'Builds: ' + builds, SMALL,
              ha='left')
    far = sorted((p for p in uses if p[1] > p[0] + 1),
                 key=lambda p: (p[1] - p[0], p[0]))
    outs = {i: [p for p in far if p[0] == i] for i in range(len(order))}
    ins = {j: [p for p in far if p[1] == j] for j in range(len(order))}
    for i, j in uses:
        if j == i + 1:  # the next section: straight down
            arrow(ax, [(left + 100, ys[i] + height), (left + 100, ys[j])])
            continue
        lane = left + width + 12 + 11 * far.index((i, j))
        y0 = ys[i] + 10 + 9 * outs[i].index((i, j))
        y1 = ys[j] + height - 10 - 12 * ins[j].index((i, j))
        arrow(ax, [(left + width, y0), (lane, y0), (lane, y1),
                   (left + width, y1)])
    label(ax, 360, 22 + len(order) * pitch, 'An arrow from one section to '
          'another: the later section uses what the earlier one saved in '
          'd2l.', SMALL, GREY)
    save(fig, 'chapter-map.svg', "Map of the chapter's sections")


def parameter_server():
    """(f) A synchronous step of a job with one server and two workers."""
    fig, ax = canvas(700, 540)
    box(ax, 230, 12, 240, 70, 'server 0\nadds what the workers push:\n'
        '(W, N) = (W₀ + W₁, N₀ + N₁), g = g₀ + g₁', ORANGE, SMALL)
    box(ax, 12, 12, 170, 70, 'scheduler\nintroduces the processes,\n'
        'runs the barriers', 'white', SMALL)
    arrow(ax, [(182, 47), (230, 47)], dashed=True)
    for i, x in enumerate((20, 400)):
        cx, w, k = x + 140, 280, '₀₁'[i]
        box(ax, x, 190, w, 30, f'worker {i}', 'white', weight='bold')
        box(ax, x, 236, w, 44, 'its shard of the text: paragraphs\n'
            f'{i}, {i + 2}, {i + 4}, ... (its own pairs and masks)', GREEN,
            SMALL)
        box(ax, x, 296, w, 44, f'its part of the batch: N{k} pairs\n'
            f'with W{k} real prediction slots', YELLOW, SMALL)
        box(ax, x, 356, w, 44, f'forward, backward: g{k} = gradient of\n'
            f'MLM sum{k} / W + NSP sum{k} / N', BLUE, SMALL)
        box(ax, x, 416, w, 44, 'Adam: the same update of its own\n'
            'copy of the parameters', PURPLE, SMALL)
        for top in (220, 280, 340, 400):
            arrow(ax, [(cx, top), (cx, top + 16)])
        # pushes rise on the outer side, pulls come down on the inner one
        up, down = (x + w - 100, x + w - 40) if i == 0 else (x + 100, x + 40)
        server_up, server_down = (250, 330) if i == 0 else (450, 370)
        arrow(ax, [(up, 190), (up, 120), (server_up, 120), (server_up, 82)])
        arrow(ax, [(server_down, 82), (server_down, 150), (down, 150),
                   (down, 190)], dashed=True)
        outer, inner = ('right', 'left') if i == 0 else ('left', 'right')
        sign = -1 if i == 0 else 1
        label(ax, up + 6 * sign, 150, f'push (W{k}, N{k}),\nthen g{k}',
              SMALL, ha=outer)
        label(ax, down - 6 * sign, 172, 'pull (W, N),\nthen g', SMALL,
              ha=inner)
    label(ax, 350, 494, 'Solid arrows: pushes; dashed: pulls, which the '
          'server answers once every worker has pushed.\nEach worker pushes '
          'and pulls 4 bytes per parameter every step. The scheduler only '
          'connects\nthe processes (dashed line) and holds no parameters.',
          SMALL, GREY)
    save(fig, 'parameter-server.svg',
         'A synchronous step of a parameter-server job with two workers')


def bert_finetuning():
    """(f) Fine-tuning BERT to classify a premise-hypothesis pair."""
    tokens = ['<cls>', 'a', 'man', 'plays', 'guitar', '<sep>', 'a', 'person',
              'makes', 'music', '<sep>', '<pad>']
    fig, ax = canvas(700, 530)
    x0, pitch, w = 46, 52, 46
    segment_brackets(ax, (('premise: segment 0', 0, 5),
                          ('hypothesis: segment 1', 6, 10)),
                     x0, pitch, w, (486, 492), 506)
    for i, token in enumerate(tokens):
        x = x0 + i * pitch
        fill = PAD if token == '<pad>' else ORANGE if 5 < i < 11 else BLUE
        box(ax, x, 446, w, 32, token, fill, SMALL)
        arrow(ax, [(x + w / 2, 446), (x + w / 2, 402)])
    box(ax, x0, 322, 11 * pitch + w, 80, 'BERTEncoder: token, segment and '
        'position embeddings, encoder blocks\npretrained on WikiText-2, then '
        'fine-tuned', PURPLE, weight='bold')
    label(ax, x0 + 11 * pitch + w / 2, 506, 'masked by\nvalid_lens', SMALL,
          GREY)
    for i in range(1, 12):
        cx = x0 + i * pitch + w / 2
        ax.plot([cx, cx], [322, 300], color=GREY, lw=1)
    label(ax, x0 + 6 * pitch, 290, 'one vector per token (unused by the '
          'classifier)', SMALL, GREY)
    cx = x0 + w / 2
    arrow(ax, [(cx, 322), (cx, 244)])
    label(ax, cx + 10, 286, '<cls> vector', SMALL, ha='left')
    box(ax, x0 - 20, 200, 250, 44, 'pooler: Dense(num_hiddens, tanh)\n'
        "NextSentencePred's, pretrained", BLUE, SMALL)
    arrow(ax, [(cx, 200), (cx, 156)])
    box(ax, x0 - 20, 112, 250, 44, 'output: Dense(3)\nnew, randomly '
        'initialized', YELLOW, SMALL, weight='bold')
    arrow(ax, [(cx, 112), (cx, 70)])
    box(ax, x0 - 20, 14, 250, 56, 'three scores: entailment,\nneutral, '
        'contradiction\n(softmax cross-entropy with the label)', 'white',
        SMALL)
    box(ax, 330, 112, 330, 132, dashed=True, lw=1)
    label(ax, 495, 178, 'set aside after pretraining:\nMaskLM (transform and '
          'decoder) and\nNextSentencePred\'s output layer\n\nno gradient '
          'reaches them', SMALL, GREY)
    label(ax, 495, 42, 'Adam updates every parameter on the left,\n'
          'with a smaller learning rate than pretraining', SMALL)
    save(fig, 'bert-finetuning.svg', 'Fine-tuning BERT on a sentence pair')


def snli_comparison():
    """Bars of results/finetune_snli.json: mean test accuracy, one sd."""
    results = json.loads((ROOT / 'results' / 'finetune_snli.json').read_text())
    rows = list(results['runs'])[::-1]  # the first row on top
    means = [sum(a for a, _ in results['runs'][r]) / len(results['runs'][r])
             for r in rows]
    sds = [(sum((a - m) ** 2 for a, _ in results['runs'][r])
            / (len(results['runs'][r]) - 1)) ** 0.5
           for r, m in zip(rows, means)]
    fig = plt.figure(figsize=(640 / 96, 300 / 96))
    ax = fig.add_axes((0.43, 0.16, 0.54, 0.8))
    ax.barh(range(len(rows)), means, xerr=sds, color=BLUE,
            edgecolor=EDGE[BLUE], ecolor=INK, capsize=3)
    ax.set_yticks(range(len(rows)), rows, fontsize=SMALL, color=INK)
    ax.set_xlabel(f'SNLI test accuracy (mean and standard deviation over '
                  f'{len(results["seeds"])} seeds)', fontsize=SMALL, color=INK)
    ax.set_xlim(0.3, max(m + s for m, s in zip(means, sds)) + 0.03)
    ax.tick_params(labelsize=SMALL, colors=INK)
    ax.grid(axis='x', alpha=0.3)
    save(fig, 'snli-comparison.svg', 'SNLI test accuracy of each classifier')


FIGURES = (bert_input, encoder_block, pretraining_example, data_parallel_step,
           chapter_map, parameter_server, bert_finetuning, snli_comparison)

if __name__ == '__main__':
    for draw in FIGURES:
        draw()
