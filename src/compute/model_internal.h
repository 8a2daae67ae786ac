/*
 * model_internal.h — private to src/compute: the classifier's layout,
 * shared by net.c (construction, forward, files) and train.c (backward,
 * optimisers).
 */
#ifndef PX_MODEL_INTERNAL_H
#define PX_MODEL_INTERNAL_H

#include <stddef.h>

#include "plexus/model.h"

struct px_net {
  px_net_config_t cfg;
  int n_layers;
  px_layer_t layer[PX_NET_MAX_LAYERS];
  float *params; /* all weights and biases, layer order */
  size_t n_params;
  /* Activations of the last forward: act[i] = output of layer i for
   * cap_n samples ([n][out_size]); input = the caller's x (borrowed). */
  float *act[PX_NET_MAX_LAYERS];
  /* conv layers: the batch's im2col matrix cols[q][b*P + p] of the last
   * forward (reused by the backward pass), and a GEMM output scratch. */
  float *cols[PX_NET_MAX_LAYERS];
  float *gemm_out;
  int cap_n;
  const float *input;
  int last_n;
  size_t max_size; /* largest per-sample tensor (input or any output) */
};

/* Make room for n samples of activations. */
int px_net_reserve(px_net_t *net, int n);
/* cols[q][b*P + p] = input of sample b at tap q = (ci, ky, kx) of output
 * pixel p = (oy, ox), 0.0f outside the image (pure copies, no arithmetic).
 */
void px_net_im2col(float *cols, const float *in, const px_layer_t *l, int n);

#endif
