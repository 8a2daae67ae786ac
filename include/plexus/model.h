/*
 * plexus/model.h — models built on the deterministic kernels: MLP and CNN
 * classifiers (inference, backpropagation, SGD/AdamW training) and a
 * Llama-style decoder that runs llama2.c checkpoints (docs/models.md).
 *
 * Determinism (DESIGN.md principle 2): every forward and backward pass is
 * made of compute.h kernels, whose results do not depend on the SIMD level
 * or thread count, plus reductions written here (bias gradients, loss,
 * col2im, optimiser updates) that run sequentially in one fixed order on
 * the calling thread.  The same seed, data and options therefore give the
 * same weights bit for bit at any PLEXUS_THREADS / PLEXUS_SIMD; the same
 * model and input give the same logits and the same trace root.
 *
 * Threading: a px_net_t, px_trainer_t or px_llama_t serves one caller at a
 * time (they own their activation scratch); the px_compute_t passed in
 * supplies the SIMD level and the thread pool.
 */
#ifndef PLEXUS_MODEL_H
#define PLEXUS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/model_io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- classifiers (MLP, CNN) ---------------------------------------------
 *
 * A classifier is a sequence of layers over one sample of shape [c][h][w]
 * (NCHW; batches are [n][c][h][w]):
 *   MLP:  (linear -> relu) x hidden, linear          dims = {in, h1, .., out}
 *   CNN:  (conv kxk pad k/2 -> relu -> maxpool 2x2) per conv channel count,
 *         then flatten, (linear -> relu) per hidden width, linear to classes.
 * Parameters live in one contiguous float array (px_net_params), in layer
 * order, weight before bias; a linear weight is W[out][in], a conv weight
 * W[oc][ic][k][k] (PyTorch layout). */

typedef enum {
  PX_NET_MLP = 1,
  PX_NET_CNN = 2,
} px_net_arch_t;

typedef enum {
  PX_LAYER_LINEAR = 1,
  PX_LAYER_CONV = 2,
  PX_LAYER_RELU = 3,
  PX_LAYER_MAXPOOL = 4, /* 2x2, stride 2 */
} px_layer_kind_t;

#define PX_NET_MAX_LAYERS 32
#define PX_NET_MAX_DIMS 12

typedef struct {
  px_net_arch_t arch;
  int in_c, in_h, in_w; /* input sample shape (MLP: in_c*in_h*in_w inputs) */
  int n_classes;
  /* MLP: hidden widths.  CNN: widths of the hidden linear layers. */
  int hidden[PX_NET_MAX_DIMS];
  int n_hidden;
  /* CNN only: output channels of each conv block, and the kernel size
   * (odd, padding k/2 keeps the size; each block halves h and w). */
  int conv[PX_NET_MAX_DIMS];
  int n_conv;
  int kernel;
} px_net_config_t;

typedef struct {
  px_layer_kind_t kind;
  int in_c, in_h, in_w;    /* per-sample input shape */
  int out_c, out_h, out_w; /* per-sample output shape */
  int k, pad;              /* conv kernel and padding */
  float *w, *b;            /* parameters (into the net's array) or NULL */
  size_t nw, nb;
  size_t in_size, out_size; /* floats per sample */
} px_layer_t;

typedef struct px_net px_net_t;

/* Fill *cfg with the default architectures used by `plexus train` for
 * 28x28x1 images and 10 classes:  MLP 784-512-256-10;  CNN conv 16, 32
 * (5x5) then 128 hidden. */
void px_net_config_default(px_net_config_t *cfg, px_net_arch_t arch);
/* Build a net (parameters zero).  PX_EINVAL for a bad config (sizes <= 0,
 * too many layers, even kernel, image too small for the pooling);
 * PX_ETOOBIG past 2^28 parameters; PX_ENOMEM. */
int px_net_new(const px_net_config_t *cfg, px_net_t **out);
void px_net_free(px_net_t *net); /* NULL ok */
/* Seeded initialisation (Kaiming-uniform weights: U(-a, a), a =
 * sqrt(6 / fan_in); zero biases), the same for the same seed everywhere. */
void px_net_init(px_net_t *net, uint64_t seed);

const px_net_config_t *px_net_config(const px_net_t *net);
int px_net_layer_count(const px_net_t *net);
const px_layer_t *px_net_layer(const px_net_t *net, int i);
float *px_net_params(px_net_t *net, size_t *n); /* owned by the net */
size_t px_net_input_size(const px_net_t *net);  /* floats per sample */
/* BLAKE2b-256 of the parameter bytes (little-endian f32). */
void px_net_hash(const px_net_t *net, uint8_t out[32]);

/* Forward pass for n samples x[n][input_size] -> logits[n][n_classes].
 * Activations are kept in the net (grown as needed, then reused) for
 * px_trainer's backward pass.  trace, if given and enabled, receives one
 * leaf per layer (the whole batch's output of that layer).  PX_ENOMEM,
 * PX_EINVAL (n <= 0), or a trace error. */
int px_net_forward(px_net_t *net, px_compute_t *c, const float *x, int n,
                   float *logits, px_trace_t *trace);

/* Output of layer i of the last px_net_forward: [n][out_size] floats owned
 * by the net (*n gets the batch size), valid until the next forward; NULL
 * if i is out of range or nothing has run.  The market reads it for
 * per-sample traces (node/shard.c). */
float *px_net_activation(px_net_t *net, int i, int *n);
/* Re-run layers first.. (first >= 1) of the last forward from the kept
 * output of layer first-1, e.g. after it was modified (the market's TEST
 * ONLY fault injection); logits as px_net_forward, no trace.  PX_EINVAL. */
int px_net_forward_from(px_net_t *net, px_compute_t *c, int first,
                        float *logits);

/* Pixels (u8, 0..255) to the net's input floats: x = p / 255. */
void px_net_pixels_to_input(const uint8_t *px, size_t n, float *x);

/* Evaluate on images[n][input_size] (u8 pixels) with labels[n]: correct
 * count, and (if hash != NULL) BLAKE2b-256 over all logits bytes in sample
 * order.  Batches of `batch` (<= 0: 256); the result does not depend on it
 * (each logit is a per-sample computation). */
int px_net_evaluate(px_net_t *net, px_compute_t *c, const uint8_t *images,
                    const uint8_t *labels, size_t n, int batch, size_t *correct,
                    uint8_t hash[32]);

/* Save as safetensors: tensors "layers.<i>.weight" / "layers.<i>.bias"
 * (i = index in the layer list, as PyTorch's nn.Sequential names them),
 * F32, plus __metadata__ {"format":"pt", "plexus.config": <config JSON>}
 * where the config JSON is px_net_config_json's.  Written atomically. */
int px_net_save(const px_net_t *net, const char *path);
/* Config as JSON, e.g. {"architecture":"cnn","input":[1,28,28],
 * "classes":10,"conv":[16,32],"kernel":5,"hidden":[128]} (appended to out). */
int px_net_config_json(const px_net_config_t *cfg, px_buf_t *out);
int px_net_config_parse(const void *json, size_t len, px_net_config_t *cfg);
/* Load a file written by px_net_save (or any safetensors file with the
 * same tensors and a plexus.config entry; F32/F16/BF16 accepted).
 * PX_EDECODE with a logged reason for a missing/mismatched config or
 * tensor; the file errors of px_st_open. */
int px_net_load(const char *path, px_net_t **out);

/* ---- training ------------------------------------------------------------ */

typedef enum {
  PX_OPT_SGD = 1,   /* SGD with (heavy-ball) momentum */
  PX_OPT_ADAMW = 2, /* Adam with decoupled weight decay */
} px_optimizer_t;

typedef struct {
  px_optimizer_t optimizer;
  int batch;      /* mini-batch size (default 64) */
  float lr;       /* learning rate (SGD 0.05, AdamW 0.001) */
  float lr_decay; /* lr multiplied by this after each epoch (default 1) */
  float momentum; /* SGD (0.9) */
  float beta1, beta2, eps; /* AdamW (0.9, 0.999, 1e-8) */
  float weight_decay;      /* AdamW decoupled (0.0001); SGD L2 (0) */
  uint64_t seed;           /* shuffling (the net's init seed is separate) */
} px_train_opts_t;

void px_train_opts_default(px_train_opts_t *o, px_optimizer_t opt);

typedef struct px_trainer px_trainer_t;

/* The trainer borrows net (which must outlive it) and owns gradient and
 * optimiser state.  PX_EINVAL for bad options. */
int px_trainer_new(px_net_t *net, const px_train_opts_t *o, px_trainer_t **out);
void px_trainer_free(px_trainer_t *t); /* NULL ok */

/* Loss and gradients of mean softmax cross-entropy over a batch
 * x[n][input], labels[n] (< n_classes), without updating; *correct counts
 * argmax hits (may be NULL).  Gradients: px_trainer_grads, same layout as
 * px_net_params. */
int px_trainer_grad(px_trainer_t *t, px_compute_t *c, const float *x,
                    const uint8_t *labels, int n, float *loss, int *correct);
const float *px_trainer_grads(const px_trainer_t *t);
/* px_trainer_grad, then one optimiser step. */
int px_trainer_step(px_trainer_t *t, px_compute_t *c, const float *x,
                    const uint8_t *labels, int n, float *loss, int *correct);

typedef struct {
  int epoch;          /* 0-based */
  size_t done, total; /* samples this epoch */
  double loss;        /* mean over the samples done */
  double accuracy;    /* training accuracy over the samples done */
  double samples_per_s;
  int finished; /* last call of the epoch */
} px_train_progress_t;

typedef void (*px_train_progress_fn)(void *ud, const px_train_progress_t *p);

/* One epoch over images[n] (u8 pixels) / labels[n]: a seeded permutation
 * (Fisher-Yates from the trainer's px_rng_t, seeded with opts.seed and
 * advanced every epoch), then full batches in that order (the last batch
 * may be smaller), then lr *= lr_decay.  progress, if given, is called
 * after every batch; result (may be NULL) receives the epoch's totals, and
 * its `epoch` field, read on entry, numbers the progress reports. */
int px_trainer_epoch(px_trainer_t *t, px_compute_t *c, const uint8_t *images,
                     const uint8_t *labels, size_t n,
                     px_train_progress_fn progress, void *ud,
                     px_train_progress_t *result);

/* ---- Llama-style decoder --------------------------------------------------
 *
 * llama2.c's architecture: token embedding, n_layers x (RMSNorm ->
 * grouped-query attention with RoPE and a KV cache -> residual; RMSNorm ->
 * SwiGLU FFN -> residual), final RMSNorm, classifier.  Weights come from a
 * px_llama2c_t (versions 0/1 f32, 2 int8 Q8_0) and are packed once at load
 * (px_pack_f32 / px_pack_q8); the checkpoint may be freed afterwards. */

typedef struct px_llama px_llama_t;

/* PX_ENOMEM; PX_EINVAL for a version-2 group size the int8 kernels cannot
 * take (G % 4 != 0) or dimensions past their limits. */
int px_llama_new(const px_llama2c_t *ckpt, px_llama_t **out);
void px_llama_free(px_llama_t *m); /* NULL ok */
const px_llama2c_config_t *px_llama_config(const px_llama_t *m);
/* Bytes of weights one forward pass reads (matmul weights, norms and one
 * embedding row), for bandwidth figures. */
size_t px_llama_weight_bytes(const px_llama_t *m);

/* Forward one token at position pos (0 <= pos < seq_len, positions fed in
 * order 0, 1, ...; the KV cache keeps earlier ones): *logits points at
 * vocab_size floats owned by the model, valid until the next call.
 * PX_ERANGE for a bad token or position. */
int px_llama_forward(px_llama_t *m, px_compute_t *c, int token, int pos,
                     float **logits, px_trace_t *trace);

typedef struct {
  int steps;         /* total positions incl. the prompt (<= seq_len) */
  float temperature; /* 0: argmax */
  float top_p;       /* 0 or 1: off */
  uint64_t seed;
} px_generate_opts_t;

/* Called with each generated token (not the prompt's); return non-zero
 * to stop. */
typedef int (*px_token_fn)(void *ud, int prev, int token);

/* Feed prompt[n_prompt] (n_prompt >= 1, usually BOS first) and sample
 * until `steps` positions or BOS (token 1) is produced, as llama2.c's
 * generate(); *n_generated counts the tokens passed to cb. */
int px_llama_generate(px_llama_t *m, px_compute_t *c, const int *prompt,
                      int n_prompt, const px_generate_opts_t *o, px_token_fn cb,
                      void *ud, int *n_generated);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_MODEL_H */
