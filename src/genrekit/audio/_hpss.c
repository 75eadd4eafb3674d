/*
 * genrekit.audio._hpss: the hot loops of the fast path's harmonic-percussive separation (HPSS), in C.
 *
 * Three functions, called from genrekit.audio.features (which documents the maths):
 *   median_filter  exact running median of float32 data over many independent lanes: the HPSS
 *                  median filters (kernel 31, along time for the harmonic part and along
 *                  frequency for the percussive part), features.running_median;
 *   soft_mask      the harmonic soft mask applied to the complex spectrogram in one pass;
 *   overlap_add    the inverse STFT's windowed overlap-add and window-sum-square scaling.
 * The build needs only a C compiler and Python's headers (buffer protocol, no NumPy headers).
 *
 * median_filter equals scipy.ndimage.median_filter bit for bit: the median of a set of floats is
 * one of its elements, and the kernel only compares and selects values, never computes with them.
 *
 * Layout. The filter runs along the "step" axis of a 2-D array; the other axis holds independent
 * "lanes" (spectrogram bins, or frames). The caller passes the source row feeding each position
 * of the padded sequence (the padding, e.g. reflection, is just an index map), so nothing is
 * padded. Output row s is the median of source rows index[s], ..., index[s + size - 1].
 *
 * Algorithm (rank tracking, vectorised across lanes). For a block of LANES lanes we keep the
 * window's `size` values in a circular buffer of slots, plus each value's rank in the window.
 * Ranks order the values by (value, age), a strict total order, so they are 0..size-1 without
 * ties. Sliding the window by one replaces the oldest value `old` (slot o) by the new `nw`:
 *   - every other element k loses one rank if old came before it: old <= w[k] (old is the oldest,
 *     so it wins ties), and gains one if nw comes before it: nw < w[k] (nw is the youngest);
 *   - nw's rank is size - 1 minus the number of other elements above it;
 *   - the median is the element of rank size / 2.
 * That is O(size) branch-free work per output and lane, identical for every lane: SIMD over the
 * LANES lanes of a block, written with GCC/Clang vector extensions (plain C, no intrinsics).
 * With GCC on x86-64 Linux the kernel is compiled three times (AVX-512, AVX2, baseline SSE2) and
 * the best one for the CPU is picked when the module loads (target_clones), so the build needs no
 * -march flag and the module runs on any x86-64 machine; elsewhere the compiler's baseline is used.
 *
 * Lanes in memory. The kernel reads and writes rows of LANES contiguous floats. When a block's
 * lanes are not contiguous (the percussive filter runs across frames), the block is first copied
 * into a staging buffer of contiguous rows, and the output goes through a second one; the copies
 * walk the source and destination along their contiguous axis.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16     /* float32 lanes per block: one AVX-512 vector, two AVX2, four SSE2 */
#define MAX_SIZE 255 /* largest window supported */

/*
 * The kernel, written once for a vector width of WIDTH bytes (NV = 64 / WIDTH vectors per block)
 * and instantiated below for the widths the compiler should use natively: GCC lowers a vector
 * wider than the target's registers poorly, so each instruction set gets its own width.
 *
 * Running median of one block of LANES lanes: in/out are rows of LANES contiguous floats, `in_step`
 * and `out_step` floats apart; index has n_out + size - 1 rows of `in`. Vector comparisons give -1
 * (true) or 0 per lane, hence the signs in the rank updates; SEL(m, a, b) is m ? a : b per lane.
 */
#define SEL(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))
#define MEDIAN_KERNEL(NAME, WIDTH)                                                                 \
    static void NAME(const float *in, Py_ssize_t in_step, float *out, Py_ssize_t out_step,         \
                     const Py_ssize_t *index, Py_ssize_t n_out, int size)                          \
    {                                                                                              \
        typedef float vf __attribute__((vector_size(WIDTH)));                                      \
        typedef int32_t vi __attribute__((vector_size(WIDTH)));                                    \
        enum { NV = 4 * LANES / (WIDTH) };                                                         \
        vf w[MAX_SIZE][NV]; /* window values, circular over slots */                               \
        vi r[MAX_SIZE][NV]; /* rank of each slot's value in the window */                          \
        vf nw[NV], old[NV], med[NV];                                                               \
        vi cnt[NV] = {{0}};                                                                        \
        const vi zero = {0};                                                                       \
        const vi half = zero + size / 2, top = zero + (size - 1);                                  \
        int k, i, j, o = 0;                                                                        \
        /* First window: slot k holds row index[k] (age order = slot order), ranks by counting. */ \
        for (k = 0; k < size; k++)                                                                 \
            memcpy(w[k], in + index[k] * in_step, sizeof w[k]);                                    \
        for (j = 0; j < NV; j++) {                                                                 \
            med[j] = (vf)zero;                                                                     \
            for (k = 0; k < size; k++) {                                                           \
                vi rk = zero;                                                                      \
                for (i = 0; i < size; i++)                                                         \
                    rk -= (vi)(w[i][j] < w[k][j]) | ((i < k ? -1 : 0) & (vi)(w[i][j] == w[k][j])); \
                r[k][j] = rk;                                                                      \
                med[j] = SEL(rk == half, w[k][j], med[j]);                                         \
            }                                                                                      \
        }                                                                                          \
        memcpy(out, med, sizeof med);                                                              \
        /* Slide: output s replaces the oldest slot o = (s - 1) % size by row index[s+size-1]. */  \
        for (Py_ssize_t s = 1; s < n_out; s++) {                                                   \
            memcpy(nw, in + index[s + size - 1] * in_step, sizeof nw);                             \
            for (j = 0; j < NV; j++) {                                                             \
                old[j] = w[o][j];                                                                  \
                cnt[j] = top; /* nw's rank: size - 1, minus one per other value above it */        \
            }                                                                                      \
            /* Every slot but o: update its rank, count nw's rank, pick the median. */             \
            for (int part = 0; part < 2; part++) /* slots 0..o-1, then o+1..size-1 */              \
                for (k = part ? o + 1 : 0; k < (part ? size : o); k++)                             \
                    for (j = 0; j < NV; j++) {                                                     \
                        vf v = w[k][j];                                                            \
                        vi above = (vi)(nw[j] < v);                                                \
                        vi rk = r[k][j] - above + (vi)(old[j] <= v);                               \
                        r[k][j] = rk;                                                              \
                        cnt[j] += above;                                                           \
                        med[j] = SEL(rk == half, v, med[j]);                                       \
                    }                                                                              \
            for (j = 0; j < NV; j++) {                                                             \
                w[o][j] = nw[j];                                                                   \
                r[o][j] = cnt[j];                                                                  \
                med[j] = SEL(cnt[j] == half, nw[j], med[j]);                                       \
            }                                                                                      \
            memcpy(out + s * out_step, med, sizeof med);                                           \
            o = o + 1 == size ? 0 : o + 1;                                                         \
        }                                                                                          \
    }

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&     \
    !defined(GENREKIT_BASELINE_ONLY)
/*
 * x86-64 with GCC: 64-byte vectors for AVX-512, 32-byte ones for AVX2 and for the SSE2 baseline
 * (target_clones: the AVX2 or baseline code is picked when the module loads); median_block picks
 * the AVX-512 kernel when the CPU has it. No -march flag is needed at build time.
 */
__attribute__((target("avx512f"))) MEDIAN_KERNEL(median_block_512, 64)
__attribute__((target_clones("avx2", "default"))) MEDIAN_KERNEL(median_block_256, 32)
static void median_block(const float *in, Py_ssize_t in_step, float *out, Py_ssize_t out_step,
                         const Py_ssize_t *index, Py_ssize_t n_out, int size)
{
    static int avx512 = -1;
    if (avx512 < 0) {
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    if (avx512)
        median_block_512(in, in_step, out, out_step, index, n_out, size);
    else
        median_block_256(in, in_step, out, out_step, index, n_out, size);
}
#else
/* Elsewhere (or with -DGENREKIT_BASELINE_ONLY, to test it): 16-byte vectors, the common width. */
MEDIAN_KERNEL(median_block, 16)
#endif

/*
 * Copy n rows of nl strided lanes (byte strides: step, lane) into rows of LANES contiguous floats
 * (lanes nl.. are zero), and back. Done in tiles of TILE steps so that both sides stay in L1:
 * each lane is read (or written) along its step axis, TILE values at a time.
 */
#define TILE 16
static void stage(float *buf, const char *src, Py_ssize_t step, Py_ssize_t lane, Py_ssize_t n,
                  int nl)
{
    for (Py_ssize_t i0 = 0; i0 < n; i0 += TILE) {
        const Py_ssize_t ni = n - i0 < TILE ? n - i0 : TILE;
        for (int l = 0; l < LANES; l++)
            for (Py_ssize_t i = 0; i < ni; i++)
                buf[(i0 + i) * LANES + l] =
                    l < nl ? *(const float *)(src + l * lane + (i0 + i) * step) : 0.0f;
    }
}

static void unstage(char *dst, Py_ssize_t step, Py_ssize_t lane, const float *buf, Py_ssize_t n,
                    int nl)
{
    for (Py_ssize_t i0 = 0; i0 < n; i0 += TILE) {
        const Py_ssize_t ni = n - i0 < TILE ? n - i0 : TILE;
        for (int l = 0; l < nl; l++)
            for (Py_ssize_t i = 0; i < ni; i++)
                *(float *)(dst + l * lane + (i0 + i) * step) = buf[(i0 + i) * LANES + l];
    }
}

/*
 * Filter all lanes: blocks of LANES lanes, each read in place when its lanes are contiguous floats,
 * else through the staging buffers (lanes past the array's end are zeros, computed and dropped).
 * Returns -1 if a staging buffer cannot be allocated.
 */
static int median_lanes(const Py_buffer *src, const Py_buffer *dst, const Py_ssize_t *index,
                        int size)
{
    const Py_ssize_t n_src = src->shape[0], lanes = src->shape[1], n_out = dst->shape[0];
    const Py_ssize_t ss = src->strides[0], sl = src->strides[1];
    const Py_ssize_t ds = dst->strides[0], dl = dst->strides[1];
    const int fl = (int)sizeof(float);
    const int direct_in = sl == fl && ss % fl == 0 && ((uintptr_t)src->buf % fl) == 0;
    const int direct_out = dl == fl && ds % fl == 0 && ((uintptr_t)dst->buf % fl) == 0;
    float *stage_in = NULL, *stage_out = NULL;

    if (!direct_in || lanes % LANES)
        stage_in = malloc((size_t)n_src * LANES * sizeof(float));
    if (!direct_out || lanes % LANES)
        stage_out = malloc((size_t)n_out * LANES * sizeof(float));
    if (((!direct_in || lanes % LANES) && stage_in == NULL) ||
        ((!direct_out || lanes % LANES) && stage_out == NULL)) {
        free(stage_in);
        free(stage_out);
        return -1;
    }
    for (Py_ssize_t l0 = 0; l0 < lanes; l0 += LANES) {
        const int nl = (int)(lanes - l0 < LANES ? lanes - l0 : LANES);
        const char *s0 = (const char *)src->buf + l0 * sl;
        char *d0 = (char *)dst->buf + l0 * dl;
        const float *in;
        float *out;
        Py_ssize_t in_step, out_step;
        if (direct_in && nl == LANES) {
            in = (const float *)s0;
            in_step = ss / fl;
        } else {
            stage(stage_in, s0, ss, sl, n_src, nl);
            in = stage_in;
            in_step = LANES;
        }
        if (direct_out && nl == LANES) {
            out = (float *)d0;
            out_step = ds / fl;
        } else {
            out = stage_out;
            out_step = LANES;
        }
        median_block(in, in_step, out, out_step, index, n_out, size);
        if (out == stage_out)
            unstage(d0, ds, dl, stage_out, n_out, nl);
    }
    free(stage_in);
    free(stage_out);
    return 0;
}

/* Whether a buffer format string is `code` in native byte order ("f", "=f", "<f" on x86...). */
static int is_format(const char *format, const char *code)
{
    if (format == NULL)
        return 0;
    if (*format == '=' || *format == '@' || *format == (PY_LITTLE_ENDIAN ? '<' : '>'))
        format++;
    return strcmp(format, code) == 0;
}

static int get_2d_float32(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (view->ndim != 2 || view->itemsize != 4 || !is_format(view->format, "f")) {
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
    int failed = 0;
    if (err == NULL && n_out > 0) {
        Py_BEGIN_ALLOW_THREADS
        failed = median_lanes(&src, &dst, idx, size);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&index);
    if (err != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    if (failed)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/*
 * The loop of soft_mask below, branch-free so that it vectorises (4, 8 or 16 lanes: compiled for
 * each instruction set like the median kernel). Returns the count of vanished nonzero bins.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&     \
    !defined(GENREKIT_BASELINE_ONLY)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static Py_ssize_t apply_soft_mask(const float *spec, const float *harm, const float *perc, float *out,
                                  Py_ssize_t n)
{
    Py_ssize_t vanished = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const float h2 = harm[i] * harm[i];
        const float den = perc[i] * perc[i] + h2;
        const float re = spec[2 * i], im = spec[2 * i + 1];
        const float mask = den != 0.0f ? h2 / den : 0.0f;
        vanished += (den == 0.0f) & ((re != 0.0f) | (im != 0.0f));
        out[2 * i] = re * mask;
        out[2 * i + 1] = im * mask;
    }
    return vanished;
}

/*
 * soft_mask(spec, harm, perc, out) -> int
 *
 * The HPSS harmonic soft mask applied in one pass (features._hpss_signals): for C-contiguous
 * spec/out (complex64) and harm/perc (float32) of the same shape,
 *     out = spec * harm**2 / (perc**2 + harm**2),
 * each step rounded to float32 as NumPy's expression would be. Where both medians are 0 the mask
 * is 0. Returns the number of those bins where spec itself is nonzero (there librosa's masks
 * differ from this form and the caller falls back to them).
 */
static PyObject *soft_mask(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    Py_buffer views[4];
    int got = 0;
    const char *err = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &objs[0], &objs[1], &objs[2], &objs[3]))
        return NULL;
    for (; got < 4; got++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (got == 3 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[got], &views[got], flags) < 0)
            break;
    }
    Py_ssize_t n = got == 4 ? views[1].len / (Py_ssize_t)sizeof(float) : 0, vanished = 0;
    if (got == 4) {
        const int complex_ok = is_format(views[0].format, "Zf") && is_format(views[3].format, "Zf");
        const int real_ok = is_format(views[1].format, "f") && is_format(views[2].format, "f");
        if (!complex_ok || !real_ok)
            err = "spec and out must be complex64, harm and perc float32";
        else if (views[0].len != 2 * views[1].len || views[2].len != views[1].len ||
                 views[3].len != views[0].len)
            err = "spec, harm, perc and out must have the same number of elements";
    }
    if (got == 4 && err == NULL) {
        const float *spec = views[0].buf, *harm = views[1].buf, *perc = views[2].buf;
        float *out = views[3].buf;
        Py_BEGIN_ALLOW_THREADS
        vanished = apply_soft_mask(spec, harm, perc, out, n);
        Py_END_ALLOW_THREADS
    }
    while (got > 0)
        PyBuffer_Release(&views[--got]);
    if (err != NULL) {
        PyErr_SetString(PyExc_TypeError, err);
        return NULL;
    }
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromSsize_t(vanished);
}

/*
 * overlap_add(frames, window, scale, hop, offset, out)
 *
 * The end of the inverse STFT (features._istft_segment) in one pass: the rows of `frames`
 * (E, n_fft), each times `window` (n_fft,), are added at steps of `hop` (n_fft a multiple of hop),
 * and the sum times `scale` (the reciprocal window sum-square, (E - 1) * hop + n_fft values);
 * samples offset .. offset + len(out) - 1 go to `out`. All float32. Each sample adds its frames'
 * windowed values in the order NumPy's version did (earliest part of the window first) and
 * without fused multiply-adds, so the result is the same to the bit.
 */
static PyObject *overlap_add(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    Py_buffer views[4];
    Py_ssize_t hop, offset;
    int got = 0;
    const char *err = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOnnO", &objs[0], &objs[1], &objs[2], &hop, &offset, &objs[3]))
        return NULL;
    for (; got < 4; got++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (got == 3 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[got], &views[got], flags) < 0)
            break;
    }
    if (got == 4) {
        for (int i = 0; i < 4; i++)
            if (!is_format(views[i].format, "f"))
                err = "frames, window, scale and out must be float32";
        if (err == NULL && (views[0].ndim != 2 || views[1].ndim != 1))
            err = "frames must be 2-D and window 1-D";
    }
    Py_ssize_t n_frames = 0, n_fft = 0, total = 0, count = 0;
    if (got == 4 && err == NULL) {
        n_frames = views[0].shape[0];
        n_fft = views[0].shape[1];
        total = views[2].len / 4;
        count = views[3].len / 4;
        if (views[1].shape[0] != n_fft || hop < 1 || n_fft % hop != 0)
            err = "window must have n_fft values, n_fft a multiple of hop";
        else if (n_frames < 1 || total != (n_frames - 1) * hop + n_fft)
            err = "scale must have (len(frames) - 1) * hop + n_fft values";
        else if (offset < 0 || offset + count > total)
            err = "offset and len(out) must lie within scale";
    }
    float *row = NULL;
    if (got == 4 && err == NULL && count > 0 && (row = malloc(hop * sizeof(float))) == NULL)
        err = "";
    if (got == 4 && err == NULL && count > 0) {
        const float *frames = views[0].buf, *window = views[1].buf, *scale = views[2].buf;
        float *out = views[3].buf;
        const Py_ssize_t parts = n_fft / hop;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = offset / hop; r <= (offset + count - 1) / hop; r++) {
            /* Output row r (samples r * hop ..) holds part j of frame r - j, j = 0..parts-1. */
            for (Py_ssize_t k = 0; k < hop; k++)
                row[k] = 0.0f;
            for (Py_ssize_t j = 0; j < parts; j++) {
                const Py_ssize_t e = r - j;
                if (e < 0 || e >= n_frames)
                    continue;
                const float *f = frames + e * n_fft + j * hop, *w = window + j * hop;
                for (Py_ssize_t k = 0; k < hop; k++)
                    row[k] += w[k] * f[k];
            }
            const Py_ssize_t lo = r * hop < offset ? offset - r * hop : 0;
            const Py_ssize_t hi = r * hop + hop > offset + count ? offset + count - r * hop : hop;
            for (Py_ssize_t k = lo; k < hi; k++)
                out[r * hop + k - offset] = row[k] * scale[r * hop + k];
        }
        Py_END_ALLOW_THREADS
    }
    free(row);
    while (got > 0)
        PyBuffer_Release(&views[--got]);
    if (err != NULL) {
        if (*err)
            PyErr_SetString(PyExc_ValueError, err);
        else
            PyErr_NoMemory();
        return NULL;
    }
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"median_filter", median_filter, METH_VARARGS,
     "median_filter(src, dst, index, size)\n--\n\n"
     "dst[s, l] = median of src[index[s:s + size], l] (float32, exact; see genrekit.audio.features)."},
    {"soft_mask", soft_mask, METH_VARARGS,
     "soft_mask(spec, harm, perc, out)\n--\n\n"
     "out = spec * harm**2 / (perc**2 + harm**2) (0 where both vanish); returns the count of\n"
     "nonzero spec bins where both vanish (see genrekit.audio.features)."},
    {"overlap_add", overlap_add, METH_VARARGS,
     "overlap_add(frames, window, scale, hop, offset, out)\n--\n\n"
     "Windowed overlap-add of frames at steps of hop, times scale; samples offset.. to out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "genrekit.audio._hpss", "HPSS kernels of the fast feature path (C).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hpss(void)
{
    return PyModule_Create(&module);
}
