/*
 * genrekit._median: exact running median of float32 data, many independent lanes at once.
 *
 * Used by genrekit.features.running_median for the HPSS median filters (kernel 31, along time for
 * the harmonic part and along frequency for the percussive part). The result equals
 * scipy.ndimage.median_filter bit for bit: the median of a set of floats is one of its elements,
 * so no arithmetic touches the values.
 *
 * Layout. The filter runs along the "step" axis of a 2-D array; the other axis holds independent
 * "lanes" (spectrogram bins, or frames). The caller passes the row of the source feeding each
 * position of the padded sequence (the padding, e.g. reflection, is just an index map), so the
 * kernel never copies or pads the input. Output row s is the median of source rows
 * index[s], ..., index[s + size - 1].
 *
 * Algorithm (rank tracking, vectorised across lanes). For a block of LANES lanes we keep the
 * window's `size` values in a circular buffer of slots, plus each value's rank in the window.
 * Ranks order the values by (value, age), a strict total order, so they are 0..size-1 without
 * ties. Sliding the window by one replaces the oldest value `old` (slot o) by the new `nw`:
 *   - every other element k loses one rank if old came before it: old <= w[k] (old is the oldest,
 *     so it wins ties), and gains one if nw comes before it: nw < w[k] (nw is the youngest);
 *   - nw's rank is the number of other elements at or below it;
 *   - the median is the element of rank size / 2.
 * That is O(size) branch-free work per output and lane, the same for every lane, which the
 * compiler turns into SIMD over the LANES lanes of a block (the inner loops over `l`). On x86-64
 * with GCC the kernel is also compiled for AVX2 and chosen at run time (target_clones); the
 * default clone is plain SSE2, so the module builds and runs on any machine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define VEC 8                 /* float32 lanes per vector (32 bytes) */
#define NV 2                  /* vectors per block */
#define LANES (VEC * NV)      /* lanes per block */
#define MAX_SIZE 255          /* largest window supported */

/* GCC/Clang vector extensions: plain C, lowered to AVX2 (or to pairs of SSE2 ops by default). */
typedef float vf __attribute__((vector_size(4 * VEC), aligned(4 * VEC)));
typedef int32_t vi __attribute__((vector_size(4 * VEC), aligned(4 * VEC)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

/* Load the source row `row` of lanes 0..nl-1 into v (lanes nl.. get 0: computed, never stored). */
static inline void load_row(float *v, const char *src, Py_ssize_t row, Py_ssize_t s_step,
                            Py_ssize_t s_lane, int nl)
{
    const char *p = src + row * s_step;
    int l;
    for (l = 0; l < nl; l++)
        v[l] = *(const float *)(p + l * s_lane);
    for (; l < LANES; l++)
        v[l] = 0.0f;
}

/* Store lanes 0..nl-1 of v as output row `row`. */
static inline void store_row(char *dst, Py_ssize_t row, Py_ssize_t d_step, Py_ssize_t d_lane,
                             const float *v, int nl)
{
    char *p = dst + row * d_step;
    for (int l = 0; l < nl; l++)
        *(float *)(p + l * d_lane) = v[l];
}

/*
 * One step of the update for slot k, vector j (see the top of the file). Comparisons of vectors
 * give -1 (true) or 0 per lane, hence the signs; `sel ? v : med` is written with bit masks.
 */
#define UPDATE(k, j)                                                                       \
    do {                                                                                   \
        vf v_ = w[k][j];                                                                   \
        vi above_ = (vi)(nw[j] < v_);                                                      \
        vi rk_ = r[k][j] - above_ + (vi)(old[j] <= v_);                                    \
        vi sel_ = rk_ == half;                                                             \
        r[k][j] = rk_;                                                                     \
        cnt[j] += above_;                                                                  \
        med[j] = (vf)(((vi)v_ & sel_) | ((vi)med[j] & ~sel_));                             \
    } while (0)

/*
 * Running median of one block of nl <= LANES lanes. src/dst are the block's first lane, with byte
 * strides per step and per lane; index has n_out + size - 1 source rows.
 */
MULTIVERSION
static void median_block(const char *src, Py_ssize_t s_step, Py_ssize_t s_lane, char *dst,
                         Py_ssize_t d_step, Py_ssize_t d_lane, const Py_ssize_t *index,
                         Py_ssize_t n_out, int size, int nl)
{
    vf w[MAX_SIZE][NV]; /* window values, circular over slots */
    vi r[MAX_SIZE][NV]; /* rank of each slot's value in the window */
    vf nw[NV], old[NV], med[NV];
    vi cnt[NV] = {{0}};
    float row[LANES];
    const vi half = (vi){0} + size / 2;
    const vi zero = (vi){0};
    const vi top = zero + (size - 1);
    int k, j, i;

    /* First window: slot k holds source row index[k] (age order = slot order), ranks by counting. */
    for (k = 0; k < size; k++) {
        load_row(row, src, index[k], s_step, s_lane, nl);
        memcpy(w[k], row, sizeof row);
    }
    for (j = 0; j < NV; j++) {
        med[j] = (vf)zero;
        for (k = 0; k < size; k++) {
            vi rk = zero;
            for (i = 0; i < size; i++)
                rk -= (w[i][j] < w[k][j]) | ((i < k ? -1 : 0) & (w[i][j] == w[k][j]));
            r[k][j] = rk;
            vi sel = rk == half;
            med[j] = (vf)(((vi)w[k][j] & sel) | ((vi)med[j] & ~sel));
        }
    }
    memcpy(row, med, sizeof row);
    store_row(dst, 0, d_step, d_lane, row, nl);

    /* Slide: output s replaces the oldest slot o = (s - 1) % size by source row index[s + size - 1]. */
    int o = 0;
    for (Py_ssize_t s = 1; s < n_out; s++) {
        load_row(row, src, index[s + size - 1], s_step, s_lane, nl);
        memcpy(nw, row, sizeof row);
        for (j = 0; j < NV; j++) {
            old[j] = w[o][j];
            cnt[j] = top; /* nw's rank: size - 1, minus one per other value above it */
        }
        /* The slots other than o, in two runs: update ranks, count nw's rank, pick the median. */
        for (k = 0; k < o; k++)
            for (j = 0; j < NV; j++)
                UPDATE(k, j);
        for (k = o + 1; k < size; k++)
            for (j = 0; j < NV; j++)
                UPDATE(k, j);
        for (j = 0; j < NV; j++) {
            vi sel = cnt[j] == half;
            w[o][j] = nw[j];
            r[o][j] = cnt[j];
            med[j] = (vf)(((vi)nw[j] & sel) | ((vi)med[j] & ~sel));
        }
        memcpy(row, med, sizeof row);
        store_row(dst, s, d_step, d_lane, row, nl);
        o = o + 1 == size ? 0 : o + 1;
    }
}

static int get_2d_float32(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (view->ndim != 2 || view->itemsize != 4 || view->format == NULL ||
        !(strcmp(view->format, "f") == 0 || strcmp(view->format, "<f") == 0 ||
          strcmp(view->format, "=f") == 0)) {
        PyErr_Format(PyExc_TypeError, "%s must be a 2-D float32 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *median_filter(PyObject *self, PyObject *args)
{
    PyObject *src_obj, *dst_obj, *index_obj;
    int size;
    Py_buffer src, dst, index;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOi", &src_obj, &dst_obj, &index_obj, &size))
        return NULL;
    if (size < 1 || size > MAX_SIZE || size % 2 == 0) {
        PyErr_Format(PyExc_ValueError, "size must be odd, 1..%d, got %d", MAX_SIZE, size);
        return NULL;
    }
    if (get_2d_float32(src_obj, &src, 0, "src") < 0)
        return NULL;
    if (get_2d_float32(dst_obj, &dst, 1, "dst") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    if (PyObject_GetBuffer(index_obj, &index, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        return NULL;
    }
    Py_ssize_t n_src = src.shape[0], lanes = src.shape[1], n_out = dst.shape[0];
    const Py_ssize_t *idx = (const Py_ssize_t *)index.buf;
    Py_ssize_t n_idx = index.len / (Py_ssize_t)sizeof(Py_ssize_t);
    const char *err = NULL;
    if (index.itemsize != (Py_ssize_t)sizeof(Py_ssize_t) || index.ndim != 1)
        err = "index must be a 1-D array of np.intp";
    else if (dst.shape[1] != lanes)
        err = "src and dst must have the same number of lanes (axis 1)";
    else if (n_idx != n_out + size - 1)
        err = "index must have len(dst) + size - 1 entries";
    for (Py_ssize_t i = 0; err == NULL && i < n_idx; i++)
        if (idx[i] < 0 || idx[i] >= n_src)
            err = "index out of range of src rows";
    if (err == NULL && n_out > 0) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t l0 = 0; l0 < lanes; l0 += LANES) {
            int nl = (int)(lanes - l0 < LANES ? lanes - l0 : LANES);
            median_block((const char *)src.buf + l0 * src.strides[1], src.strides[0], src.strides[1],
                         (char *)dst.buf + l0 * dst.strides[1], dst.strides[0], dst.strides[1], idx,
                         n_out, size, nl);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&index);
    if (err != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"median_filter", median_filter, METH_VARARGS,
     "median_filter(src, dst, index, size)\n--\n\n"
     "dst[s, l] = median of src[index[s:s + size], l] (float32, exact; see genrekit.features)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "genrekit._median", "Exact running median over lanes (C).", -1, methods,
};

PyMODINIT_FUNC PyInit__median(void)
{
    return PyModule_Create(&module);
}
