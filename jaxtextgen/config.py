"""The base config every experiment in configs/ starts from.

`base_config()` returns a *locked* ConfigDict: a typo in a config file or on
the command line (`--config.modle.hidden_size=...`) is an error, not a new
field that silently does nothing. Experiment files change values only.
"""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.algorithm = 'lm'             # a module in jaxtextgen/steps (see steps.ALGORITHMS)
  c.seed = 0                     # one seed for init, data order, dropout and sampling
  c.batch_size = 64              # GLOBAL batch; must divide by the number of devices
  c.num_epochs = 1.0             # training length in passes over the train split ...
  c.num_train_steps = -1         # ... unless this is > 0
  c.log_every = 100              # steps between train-metric rows and progress lines
  c.eval_every = 0               # steps between evaluations (0: only at the end)
  c.checkpoint_every = 1000      # steps between checkpoints (also at the end and on SIGTERM)
  c.keep_checkpoints = 2         # how many checkpoints to keep
  c.eval_batch_size = 256        # GLOBAL eval batch; must divide by the number of devices
  c.nan_policy = 'stop'          # non-finite parameters after an update: 'stop' the run before
                                 # checkpointing them, or 'skip' that update (the data moves on;
                                 # train rows give the fraction skipped: 'nan_skipped')

  c.data = d = ml_collections.ConfigDict()
  d.corpus = 'oracle'            # 'oracle' or a corpus of jaxtextgen.data.corpora.CORPORA
  d.corpus_dir = ''              # directory holding the corpus files (not for 'oracle')
  d.download = False             # download the corpus if corpus_dir lacks it (PTB, COCO)
  d.cache_dir = ''               # prepared TFDS data ('' = ~/.cache/jaxtextgen/tfds)
  d.train_split = 'train'        # TFDS split string, slicing allowed ('train[:9000]')
  d.eval_split = 'validation'    # '' for none
  d.max_len = 20                 # target tokens per sentence, EOS included (longer: truncated)
  d.max_eval_len = 0             # eval sentences longer than this are truncated, with a warning
                                 # that counts them (0: eval never truncates)
  d.tokenizer = 'word'           # 'word' (whitespace-separated) or 'char' (every character)
  d.num_classes = 0              # labelled corpora: labels lie in [0, num_classes) (0: unlabelled)
  d.label_fraction = 1.0         # semi-supervised: keep the labels of this fraction of train
                                 # sentences (a seeded choice); the others become -1 (unlabelled)
  d.sort_chunk = 0               # length bucketing: sort runs of this many batches (0: off)
  d.trim_multiple = 0            # cut batches to their longest sentence, rounded up to this
  d.min_count = 1                # vocabulary: words seen at least this often in train
  d.max_vocab = 0                # vocabulary: at most this many entries (0: no limit)
  d.oracle_path = ''             # SeqGAN oracle weights (.npz); '' = random N(0,1) oracle
  d.oracle_seed = 0              # seed of the random oracle and of its generated corpora
  d.oracle_vocab_size = 5000     # random oracle vocabulary
  d.oracle_num_train = 10_000    # oracle samples forming the training set (SeqGAN: 10k)
  d.oracle_num_eval = 1_000      # held-out oracle samples for eval NLL
  d.provenance = ''              # filled in at start-up: the corpus files and their SHA-256
                                 # (or the oracle's source), recorded in config.json

  c.model = m = ml_collections.ConfigDict()
  m.decoder = 'lstm'             # every algorithm's decoder: 'lstm' or 'transformer'
  m.emb_dim = 256                # token embedding size (lstm; the transformer uses hidden_size)
  m.hidden_size = 256            # LSTM state size / Transformer model width
  m.num_layers = 1               # stacked LSTM layers / Transformer blocks
  m.dropout = 0.0                # embedding / between-layer / output dropout
  m.num_heads = 4                # transformer: attention heads (hidden_size must divide by it)
  m.mlp_dim = 1024               # transformer: feed-forward width
  m.positions = 'learned'        # transformer: 'learned' or 'sinusoidal' position embeddings
  m.max_positions = 512          # transformer: longest sequence ('learned' table size)
  m.cln_hidden = 0               # conditional LayerNorm: hidden layer between condition and
                                 # gamma/beta (bert4keras' hidden_units; 0: none)
  m.label_dim = 128              # class-conditional models: size of the label embedding
  m.dtype = 'float32'            # compute dtype: 'float32' or 'bfloat16' (params stay f32)

  c.optimizer = o = ml_collections.ConfigDict()
  o.name = 'adam'                # 'adam' (AdamW), 'rmsprop', 'sgd'
  o.learning_rate = 1e-3         # peak learning rate
  o.schedule = 'constant'        # 'constant', 'cosine' (warmup + cosine), 'linear' decay
  o.warmup_steps = 0             # for 'cosine'
  o.b1 = 0.9                     # Adam beta1
  o.b2 = 0.999                   # Adam beta2
  o.weight_decay = 0.0           # decoupled weight decay
  o.grad_clip = 5.0              # global-norm gradient clipping (0: off)

  c.eval = e = ml_collections.ConfigDict()
  e.num_samples = 0              # samples drawn at eval (NLL-oracle uses 9,984 as SeqGAN)
  e.max_batches = 0              # eval on at most this many batches (0: whole split)
  e.at_start = False             # also evaluate before the first step (step 0 of metrics.jsonl)
  e.bleu = False                 # lm and GANs: BLEU-2..5 of one temperature-1 sample per eval
                                 # sentence vs the eval split, and their self-BLEU-2..5
  e.judge = ''                   # workdir of a trained 'classifier': judge_acc of the samples
                                 # generated for each class (conditional models)
  e.judge_samples = 500          # conditional models: samples per class for judge_acc,
                                 # distinct-n and self-BLEU
  e.judge_decode = 'model'       # cln_lm: how those samples are drawn: 'model' (temperature
                                 # 1, the model's distribution) or 'sample' (config.sample's
                                 # temperature / top_k / top_p / greedy, as --mode=sample)
  e.fluency_lm = ''              # workdir of a trained 'lm': transfer_ppl of transferred
                                 # sentences (ctrl_gen, cross_align)

  # Models with an attribute code (ctrl_gen, cross_align): --mode=transfer and the eval.
  c.transfer = t = ml_collections.ConfigDict()
  t.decode = 'greedy'            # 'greedy' (argmax), 'beam', or 'sample' (config.sample's knobs)
  t.beam_size = 4                # 'beam': hypotheses kept at every step
  t.length_penalty = 0.0         # 'beam': the final pick divides log p by length ** this
  t.rerank_classifier = 0.0      # 'beam', ctrl_gen: pick among the beam's hypotheses the one
                                 # maximising score + this * log q_D(target | y), the model's
                                 # own classifier (0: the most likely hypothesis)

  c.sample = s = ml_collections.ConfigDict()
  s.num = 10                     # sentences printed by --mode=sample
  s.temperature = 1.0            # softmax temperature
  s.top_k = 0                    # sample among the k most likely tokens (0: all)
  s.top_p = 0.0                  # nucleus sampling: the smallest set of mass >= top_p (0: off)
  s.greedy = False               # argmax decoding
  s.label = -1                   # conditional models: class of the samples (-1: classes in turn)
  # Autoencoders only (ae, dae, vae), each also written to WORKDIR:
  s.reconstruct_file = ''        # reconstruct these sentences (a file, '-' for stdin, one per line)
  s.homotopy = ''                # 'sentence a ||| sentence b': decode along the line between codes
  s.homotopy_steps = 7           # points on that line, both ends included
  s.latent_png = False           # PNG of the eval split's posterior means (PCA), coloured by label
  s.latent_max_sentences = 5000  # at most this many eval sentences in that PNG

  # Autoencoders (ae, dae, vae): the encoder, the latent and the dae's input noise.
  # Encoder and decoder use config.model's emb_dim / hidden_size; config.model.dropout
  # applies to the decoder only (as in He et al. 2019).
  c.ae = a = ml_collections.ConfigDict()
  a.latent_dim = 32              # size of z (deterministic code for ae/dae, Gaussian for vae)
  a.bidirectional = False        # bi-LSTM encoder (summary = both directions' last states)
  a.attention = False            # the LSTM decoder also attends over the encoder's states
                                 # (texar's attentional autoencoder): ctrl_gen, codes
                                 # 'transfer' only
  a.mask_prob = 0.0              # dae: probability of replacing a word with <mask>
  a.drop_prob = 0.0              # dae: probability of deleting a word
  a.shuffle_k = 0                # dae: local shuffle, no word moves more than k places (0: off)

  # VAE objective and evaluation (algorithm 'vae').
  c.vae = v = ml_collections.ConfigDict()
  v.beta = 1.0                   # KL weight once annealing is over (beta-VAE; 1: the ELBO)
  v.kl_schedule = 'constant'     # 'constant', 'linear', 'logistic' (Bowman), 'cyclical' (Fu)
  v.kl_start = 0.0               # 'linear': weight at step 0 (He et al. 2019: 0.1)
  v.kl_warmup_steps = 10_000     # 'linear': steps to reach beta
  v.logistic_k = 0.0025          # 'logistic': slope k of 1 / (1 + exp(-k (step - x0)))
  v.logistic_x0 = 2500           # 'logistic': step x0 where the weight is beta / 2
  v.num_cycles = 4               # 'cyclical': number of cycles M over num_train_steps
  v.cycle_ratio = 0.5            # 'cyclical': fraction R of each cycle spent rising
  v.word_dropout = 0.0           # prob. of replacing a decoder INPUT word by <unk> (train only)
  v.free_bits = 0.0              # per-dimension KL floor lambda in nats (0: off; Li et al. 2019)
  v.encoder_init = ''            # workdir of a trained 'ae' run: start from its encoder
  v.aggressive_steps = 0         # He et al. 2019: first N steps update one player at a time ...
  v.aggressive_encoder_updates = 10  # ... this many encoder-only steps, then one decoder step
  v.iw_samples = 500             # eval: importance samples of the IW-NLL (0: skip it)
  v.iw_chunk = 50                # eval: samples scored per step (memory ~ chunk x eval batch)

  # GAN algorithms (seqgan, gumbel_gan, wgan): the schedule of their phases, the
  # discriminator, the rewards. The generator is config.model trained with config.optimizer
  # (MLE steps). A run is mle_steps + d_pretrain_steps + rounds * (g_steps + d_steps) steps
  # (real batches), computed at start-up: leave num_train_steps at -1.
  c.gan = g = ml_collections.ConfigDict()
  g.mle_steps = 0                # phase 'mle': generator MLE (teacher-forcing) steps
  g.d_pretrain_steps = 0         # phase 'd_pretrain': D steps, real batch vs fresh samples
  g.rounds = 0                   # phase 'round': adversarial rounds, each of ...
  g.g_steps = 1                  # ... this many generator steps (a real batch each), then ...
  g.d_steps = 1                  # ... this many discriminator steps (a real batch each)
  g.mle_every = 0                # an extra MLE step after every k-th adversarial G step (0: off)
  g.ema_decay = 0.0              # EMA of the adversarial generator, used by eval/sample (0: off)
  g.d_kind = 'cnn'               # discriminator: 'cnn' (SeqGAN's) or 'lstm'
  g.d_emb_dim = 64               # discriminator embedding size (SeqGAN: 64)
  g.d_filter_sizes = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)  # cnn: filter widths (SeqGAN)
  g.d_num_filters = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)  # cnn: per width
  g.d_hidden_size = 64           # lstm: state size
  g.d_dropout = 0.25             # dropout before the output layer (SeqGAN: keep_prob 0.75)
  g.d_two_class = True           # SeqGAN's 2-way softmax output (False: one logit; same model)
  g.d_l2 = 0.2                   # L2 weight on the output layer (SeqGAN's l2_reg_lambda)
  g.d_optimizer = 'adam'         # discriminator optimizer: 'adam', 'rmsprop' or 'sgd'
  g.d_learning_rate = 1e-4       # discriminator learning rate (SeqGAN: Adam 1e-4)
  g.d_grad_clip = 0.0            # discriminator global-norm gradient clipping (0: off)
  g.num_rollouts = 16            # seqgan: Monte-Carlo rollouts per prefix (SeqGAN: 16)
  g.rollout_chunks = 1           # seqgan: rollouts run in this many sequential chunks (memory / k)
  g.rollout_groups = 4           # seqgan: prefix groups, each rolled out from its first state
  g.rollout_update_rate = 0.8    # seqgan: rollout <- rate * rollout + (1 - rate) * generator
  g.baseline = 'none'            # seqgan: none (SeqGAN), moving_average, rollout_mean, value
  g.baseline_decay = 0.9         # seqgan: decay of the 'moving_average' baseline
  g.value_hidden_size = 64       # seqgan: width of the 'value' baseline's MLP
  g.value_learning_rate = 1e-3   # seqgan: Adam learning rate of the 'value' baseline
  g.generator_init = ''          # workdir of an 'lm' run: start from its generator (mle_steps=0)
  g.loss = 'nonsaturating'       # gumbel_gan: 'nonsaturating', 'rsgan' or 'wgan'; wgan: 'wgan'
  g.clip = 0.0                   # clip every D weight into [-clip, clip] after updates (WGAN 0.01)
  g.instance_noise = 0.0         # std of Gaussian noise on D's one-hot / soft inputs (0: off)
  g.g_optimizer = 'adam'         # gumbel_gan, wgan: optimizer of the adversarial G updates
  g.g_learning_rate = 1e-4       # gumbel_gan, wgan: its learning rate (RelGAN: Adam 1e-4)
  g.gumbel_beta_max = 100.0      # gumbel_gan: final inverse temperature beta (RelGAN: 100, 1000)
  g.gumbel_schedule = 'exp'      # gumbel_gan: beta schedule (objectives.discrete, RelGAN's 'exp')
  g.gumbel_anneal_steps = 0      # gumbel_gan: N of the schedule in G updates (0: the run's all)
  g.gumbel_hard = False          # gumbel_gan: straight-through one-hots to D (False: soft, RelGAN)
  g.latent_std = 0.0             # gumbel_gan, wgan: std of the fakes' random initial LSTM state
                                 # (other decoders: of noise on BOS's embedding)

  # VAE-GAN (algorithm 'vae_gan'): the VAE (config.ae, config.vae) whose decoder is the
  # generator of config.gan's schedule and discriminator; gan.mle_steps are VAE steps.
  c.vae_gan = vg = ml_collections.ConfigDict()
  vg.gamma = 1.0                 # weight of the reconstruction NLL in the decoder's loss
  vg.feature_weight = 0.0        # Larsen's learned similarity: weight of ||D features of x
                                 # - of its reconstruction||^2 in the decoder's loss (0: off)

  # Controlled generation (algorithm 'ctrl_gen', Hu et al. 2017): the VAE (config.ae,
  # config.vae) whose decoder reads [z, one-hot c], the classifier of config.classifier, and
  # config.gan's schedule: gan.mle_steps VAE steps, gan.d_pretrain_steps classifier steps on
  # labelled data, gan.rounds wake-sleep rounds (g_steps generator, d_steps classifier steps);
  # Gumbel-softmax sentences with gan.gumbel_* (inverse temperature 1 -> gumbel_beta_max).
  c.ctrl_gen = cg = ml_collections.ConfigDict()
  cg.lambda_c = 0.1              # weight of L_attr,c (q_D recovers c from soft sentences)
  cg.lambda_z = 0.1              # weight of L_attr,z (q_E recovers z from soft sentences)
  cg.lambda_u = 0.1              # weight of L_u (generated sentences) in the classifier loss
  cg.entropy_beta = 0.1          # beta of L_u's minimum-entropy term
  cg.codes = 'prior'             # 'prior' (Hu et al.): phase 'vae' with c ~ p(c), L_attr on
                                 # z ~ N(0, I), c ~ p(c); 'transfer' (texar's simplified
                                 # variant): phase 'vae' with each sentence's own code, L_attr
                                 # on z = each real sentence's posterior mean, c = another class
  cg.attr_to_encoder = False     # codes 'transfer': L_attr,c and L_attr,z also train the encoder
                                 # through the real sentence's z (and attention memory), as
                                 # texar's variant does (its g_vars hold the encoder); False:
                                 # Hu et al.'s encoder, trained by L_VAE only
  cg.lambda_cycle = 0.0          # codes 'transfer': weight of L_cycle, -log p(x | the soft
                                 # transfer G~(z, c') encoded, and x's own code c): the
                                 # transfer must keep what reconstructs its source
                                 # (back-translation, Lample et al. 2019); 0: off (Hu et al.)
  cg.attr_dropout = False        # L_attr,c reads q_D with its training dropout
                                 # (config.classifier.dropout), as texar's classifier in TRAIN
                                 # mode does: the decoder must move q_D under any dropout
                                 # mask; False: q_D deterministic

  # Style transfer by cross-alignment (algorithm 'cross_align', Shen et al. 2017). The two
  # discriminators over hidden states are config.gan.d_* (CNN sizes, dropout, optimizer).
  c.cross_align = ca = ml_collections.ConfigDict()
  ca.style_dim = 200             # style embedding of the decoder's state [style, z] (dim_y)
  ca.rho = 1.0                   # weight of the adversarial loss
  ca.gate = 1.2                  # adversarial update only while both D losses are below this
  ca.gumbel_temperature = 0.1    # temperature of the free-running Gumbel-softmax decoder

  # Data-to-text (algorithm 'd2t', Puduppully et al. 2019; corpora 'webnlg', 'rotowire'):
  # records -> text with content selection, a pointer-network planner, attention and copy;
  # then self-critical policy gradient on BLEU (phase 'scst').
  c.d2t = dt = ml_collections.ConfigDict()
  dt.planner = True              # True: content selection + planning (Puduppully et al.);
                                 # False: the ablation, attention + copy over the records'
                                 # tokens in input order (a bi-LSTM over the linearised input)
  dt.copy = 'joint'              # 'joint' (one softmax over vocabulary and source positions,
                                 # Gu et al. 2016) or 'conditional' (a switch p_gen mixes the
                                 # vocabulary softmax and the copy attention, Gulcehre et al.)
  dt.delex = False               # replace entity strings by placeholders (data.d2t)
  dt.max_records = 8             # records per entry (WebNLG: at most 7)
  dt.max_field_len = 20          # tokens per field
  dt.max_source_len = 128        # source tokens per entry (all fields of all records)
  dt.max_refs = 8                # references per entry kept for the BLEU reward
  dt.max_oov = 32                # copyable source words outside the vocabulary, per entry
  dt.plan_weight = 1.0           # weight of the planner's NLL beside the text NLL
  dt.coverage_reward = 0.0       # scst: weight of the entity coverage of a decode (the share
                                 # of its entity-field source tokens it contains) added to
                                 # its BLEU reward
  dt.decode = 'beam'             # generation: 'greedy' or 'beam'
  dt.beam_size = 4               # 'beam': hypotheses kept
  dt.length_penalty = 1.0        # 'beam': final pick by log p / length ** this
  dt.rerank_coverage = 0.0       # 'beam': final pick by that + this x the hypothesis's
                                 # entity coverage (`steps.d2t.source_coverage`)
  dt.eval_entries = 0            # eval generation on N evenly spaced eval entries (0: all)

  # Self-critical training on sentence BLEU (phase 'scst', `steps.self_critical`; algorithms
  # 'd2t' and 'dae'): REINFORCE with the greedy decode's reward as the baseline.
  c.scst = sc = ml_collections.ConfigDict()
  sc.init = ''                   # workdir of a trained run of the same algorithm and sizes
                                 # to start from (its latest params)
  sc.mle_steps = 0               # with steps: the algorithm's MLE steps before phase 'scst'
  sc.steps = 0                   # phase 'scst': self-critical steps (0: MLE only, the whole run)
  sc.weight = 1.0                # weight of the policy-gradient loss
  sc.mle_mix = 0.0               # weight of the MLE loss mixed in (MIXER-style)
  sc.learning_rate = 1e-4        # Adam learning rate of the self-critical updates

  # Text classifier (algorithm 'classifier'; also the judge of conditional samples). Classes:
  # config.data.num_classes.
  c.classifier = k = ml_collections.ConfigDict()
  k.encoder = 'cnn'              # 'cnn' (Kim 2014, the discriminators' CNN), 'lstm', 'transformer'
  k.emb_dim = 128                # token embedding size
  k.filter_sizes = (3, 4, 5)     # cnn: filter widths
  k.num_filters = (100, 100, 100)  # cnn: filters per width
  k.hidden_size = 128            # lstm / transformer encoder width
  k.dropout = 0.5                # dropout before the output layer

  # Filled in at start-up from the data (vocabulary size, special ids); not for users.
  c.vocab = ml_collections.ConfigDict(
      dict(size=-1, bos_id=-1, eos_id=-1, pad_id=0, mask_id=-1, unk_id=-1))
  c.lock()
  return c


def parse_presets(preset: str, allowed) -> list[str]:
  """A config's comma-separated preset string as a list; an error naming the allowed
  ones for anything else."""
  presets = [p for p in preset.split(',') if p]
  if set(presets) - set(allowed):
    raise ValueError(f'unknown preset(s) {sorted(set(presets) - set(allowed))}: use any of '
                     f'{tuple(allowed)}, comma-separated')
  return presets


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks any config to a run of seconds (the `:smoke` preset)."""
  c.batch_size = 8
  c.eval_batch_size = 16
  c.num_train_steps = 6
  c.log_every = 2
  c.eval_every = 4
  c.checkpoint_every = 3
  c.model.emb_dim = 16
  c.model.hidden_size = 16
  c.eval.max_batches = 2
  c.eval.num_samples = min(c.eval.num_samples, 32)
  c.sample.num = 3
  c.data.oracle_vocab_size = 50
  c.data.oracle_num_train = 64
  c.data.oracle_num_eval = 32
  c.data.oracle_path = ''
  return c
