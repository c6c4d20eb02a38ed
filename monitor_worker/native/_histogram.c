/* The numeric histogram update of monitor_worker.stats.sketches in one pass over a batch:
 * slot of each value (a lookup table over the inner edges, then at most one comparison; a short
 * binary search beyond them or where a cell holds several edges),
 * counts, gaps to the slot's left edge, tail squares, moments, min/max and, for discrete
 * binnings, the values that are not a reference value. Replaces sort + searchsorted +
 * bincount (x3) + moments in numpy, which read every value five to eight times.
 *
 * A flush's batches go in as one list, each read in place whatever its stride (no
 * concatenation); runs of one slot (sorted or slowly moving values) are counted once per run.
 * Also here: take_rows, the reservoir's rows written straight into its sample.
 *
 * Written against the buffer protocol only (no numpy C API): the Python side passes
 * float64 / int64 arrays and checks shapes. Results equal the numpy path up to the order of
 * floating additions, moments more exactly (tests/unit/stats/test_native.py). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <float.h>

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *fmt, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->itemsize != 8 || view->format == NULL || strchr(fmt, view->format[0]) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous %s buffer", name, fmt[0] == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The lookup table covers the inner edges [e[j0], e[k-1-j0]] (j0 = k/64, 0 for few edges): the
 * reference's extremes are far out on heavy tails and would stretch the cells, so the few values
 * beyond the inner range (about 3% on quantile edges) take a binary search instead. */
static inline Py_ssize_t inner_margin(Py_ssize_t k) { return k >= 64 ? k / 64 : 0; }

/* The cell of x: 0 below ilo, 1 + floor((x - ilo) * scale) up to size + 1 above. The same
 * expression in build_lut and the update, so both agree bit for bit. Monotonic in x. */
static inline Py_ssize_t cell_of(double x, double ilo, double scale, Py_ssize_t size) {
    const double d = (x - ilo) * scale;
    if (!(d >= 0.0)) return 0;
    return d >= (double)size ? size + 1 : (Py_ssize_t)d + 1;
}

/* Number of edges <= v among base[0..len) (len >= 1, sorted): a branchless search, conditional
 * moves only, so no mispredictions on random data. */
static inline Py_ssize_t count_le(const double *base, Py_ssize_t len, double v) {
    const double *b = base;
    while (len > 1) {
        const Py_ssize_t half = len >> 1;
        b = (b[half] <= v) ? b + half : b;
        len -= half;
    }
    return (b - base) + (*b <= v);
}

/* build_lut(edges, size) -> bytes: lut[c] (int32, c = 0..size+2) is the number of edges whose
 * cell is below c. Since cells are monotonic, a value of cell c has every edge of a lower cell
 * at or below it and every edge of a higher cell above it: its slot is lut[c] plus the edges
 * of its own cell at or below it (usually none or one: no search). */
static PyObject *build_lut(PyObject *self, PyObject *args) {
    PyObject *edges_obj; Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "On", &edges_obj, &size)) return NULL;
    if (size < 1) { PyErr_SetString(PyExc_ValueError, "size must be >= 1"); return NULL; }
    Py_buffer ev;
    if (get_buffer(edges_obj, &ev, 0, "d", "edges") < 0) return NULL;
    const double *e = (const double *)ev.buf;
    const Py_ssize_t k = ev.len / 8, j0 = inner_margin(k);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (size + 3) * (Py_ssize_t)sizeof(int32_t));
    if (out == NULL) { PyBuffer_Release(&ev); return NULL; }
    int32_t *lut = (int32_t *)PyBytes_AS_STRING(out);
    const double ilo = e[j0], ihi = e[k - 1 - j0];
    const double scale = ihi > ilo ? (double)size / (ihi - ilo) : 0.0;
    memset(lut, 0, (size + 3) * sizeof(int32_t));
    for (Py_ssize_t j = 0; j < k; j++) lut[cell_of(e[j], ilo, scale, size) + 1] += 1;
    for (Py_ssize_t c = 1; c <= size + 2; c++) lut[c] += lut[c - 1];  /* edges of cells < c */
    PyBuffer_Release(&ev);
    return out;
}

#define BLOCK 256

/* What one call updates: the binning, the per-slot arrays and the running moments. */
typedef struct {
    const double *e; const int32_t *lut;
    Py_ssize_t k, size, j0, j1;
    double lo, hi, ilo, ihi, scale;
    int64_t *counts; double *gaps; int64_t *offgrid; double *offv;
    Py_ssize_t n_fin, n_off;
    double c, mean, m2, tu, to, mn, mx;  /* mean: of (x - c), c the first finite value */
} kstate;

/* The slot and gap of value xb[i] into slot[i] and gap[i], -1 for NaN/inf; cell[i] is its
 * lookup-table cell (cell_of) where it lies within the inner edges, else -1. */
#define SLOT_OF(i) do {                                                                       \
    const double v = xb[i];                                                                   \
    const Py_ssize_t c = cell[i];                                                             \
    Py_ssize_t idx;                                                                           \
    if (c >= 0) {  /* the usual case */                                                       \
        const Py_ssize_t a = lut[c], len = lut[c + 1] - a;                                   \
        idx = len <= 1 ? a + (len & (e[a] <= v)) : a + count_le(e + a, len, v);             \
        gap[i] = v - e[idx - 1];                                                              \
    } else if (!isfinite(v)) {  /* NaN, inf: only counted as missing */                      \
        slot[i] = -1; gap[i] = 0.0; break;                                                    \
    } else if (v >= lo && v < hi) {  /* beyond the inner edges: a short search */            \
        idx = v < ilo ? count_le(e, j0 + 1, v) : j1 + count_le(e + j1, j0 + 1, v);           \
        gap[i] = v - e[idx - 1];                                                              \
    } else if (v < lo) {                                                                      \
        idx = 0; gap[i] = lo - v; tu += gap[i] * gap[i];                                      \
    } else {                                                                                  \
        idx = k; gap[i] = v - hi; to += gap[i] * gap[i];                                      \
    }                                                                                         \
    slot[i] = (int32_t)idx;                                                                   \
    nb++;                                                                                     \
} while (0)

/* The counts and gaps of a block whose neighbours mostly share a slot (sorted or slowly moving
 * values, a feature of few values): one update per run of one slot. Updated one value at a
 * time, each count there would wait in memory on the one before it (1.5x slower on sorted
 * values, bench/kernel.py). */
static void scatter_runs(const int32_t *slot, const double *gap, Py_ssize_t m, int64_t *counts, double *gaps) {
    int32_t cur = -1;
    int64_t cc = 0;
    double cg = 0.0;
    for (Py_ssize_t i = 0; i < m; i++) {
        const int32_t idx = slot[i];
        if (idx < 0) continue;
        if (idx != cur) {
            if (cur >= 0) { counts[cur] += cc; gaps[cur] += cg; }
            cur = idx; cc = 0; cg = 0.0;
        }
        cc += 1;
        cg += gap[i];
    }
    if (cur >= 0) { counts[cur] += cc; gaps[cur] += cg; }
}

/* One block of at most BLOCK values: every value's slot and gap first (no dependence between
 * values), then the counts and gaps (a scatter), then the block's own mean and squared
 * deviations (a second look at values still in L1), merged into the running moments by
 * Chan et al.'s update: as stable as two passes over the whole batch, in one. */
static inline void run_block(kstate *S, const double *xb, Py_ssize_t m) {
    const double *e = S->e; const int32_t *lut = S->lut;
    const Py_ssize_t k = S->k, size = S->size, j0 = S->j0, j1 = S->j1;
    const double lo = S->lo, hi = S->hi, ilo = S->ilo, ihi = S->ihi, scale = S->scale;
    double tu = 0.0, to = 0.0;
    Py_ssize_t nb = 0;
    int32_t slot[BLOCK];
    double gap[BLOCK];
    /* Cells first, branch-free (the compiler vectorises it): cell_of where the value lies in
     * [ilo, ihi), -1 elsewhere (NaN included); the conversion only ever sees a value in range. */
    int32_t cell[BLOCK];
    const double fsize = (double)size;
    for (Py_ssize_t i = 0; i < m; i++) {
        const double v = xb[i], d = (v - ilo) * scale;
        const int inner = (v >= ilo) & (v < ihi), below = d < fsize;
        const int32_t c = (int32_t)(inner & below ? d : 0.0) + 1;
        cell[i] = inner ? (below ? c : (int32_t)size + 1) : -1;
    }
    for (Py_ssize_t i = 0; i < m; i++) SLOT_OF(i);
    int64_t *counts = S->counts, *offgrid = S->offgrid;
    double *gaps = S->gaps;
    int32_t same = 0;  /* neighbours in one slot (int32: the compiler vectorises the count) */
    for (Py_ssize_t i = 1; i < m; i++) same += slot[i] == slot[i - 1];
    if (4 * (Py_ssize_t)same <= 3 * m) {  /* the usual case: one update per value */
        for (Py_ssize_t i = 0; i < m; i++) {
            const int32_t idx = slot[i];
            if (idx < 0) continue;
            counts[idx] += 1;
            gaps[idx] += gap[i];
            if (offgrid != NULL && (idx == 0 || e[idx - 1] != xb[i])) {
                offgrid[idx] += 1;
                S->offv[S->n_off++] = xb[i];
            }
        }
    } else {
        scatter_runs(slot, gap, m, counts, gaps);
        if (offgrid != NULL)
            for (Py_ssize_t i = 0; i < m; i++) {
                const int32_t idx = slot[i];
                if (idx >= 0 && (idx == 0 || e[idx - 1] != xb[i])) {
                    offgrid[idx] += 1;
                    S->offv[S->n_off++] = xb[i];
                }
            }
    }
    S->tu += tu;
    S->to += to;
    if (nb == 0) return;
    /* Sum, minimum, maximum, then squared deviations from the block's mean, in four lanes
     * (values still in L1; no chain of floating operations sets the pace). Everything is
     * taken from a shift c, the call's first finite value, so a large offset with a small
     * spread (timestamps) loses nothing to cancellation, in the means either. */
    if (S->n_fin == 0) {
        Py_ssize_t first = 0;
        if (nb != m) while (slot[first] < 0) first++;
        S->c = xb[first];
    }
    const double c = S->c;
    double s[4] = {0.0, 0.0, 0.0, 0.0}, mn[4], mx[4], a[4] = {0.0, 0.0, 0.0, 0.0};
    for (int j = 0; j < 4; j++) { mn[j] = S->mn; mx[j] = S->mx; }
    const Py_ssize_t m4 = m & ~(Py_ssize_t)3;
    if (nb == m) {  /* no NaN/inf in the block: plain loops */
        for (Py_ssize_t i = 0; i < m4; i += 4)
            for (int j = 0; j < 4; j++) {
                const double v = xb[i + j];
                s[j] += v - c; mn[j] = v < mn[j] ? v : mn[j]; mx[j] = v > mx[j] ? v : mx[j];
            }
        for (Py_ssize_t i = m4; i < m; i++) {
            const double v = xb[i];
            s[0] += v - c; mn[0] = v < mn[0] ? v : mn[0]; mx[0] = v > mx[0] ? v : mx[0];
        }
    } else {
        for (Py_ssize_t i = 0; i < m; i++) {
            if (slot[i] < 0) continue;
            const double v = xb[i];
            s[0] += v - c; mn[0] = v < mn[0] ? v : mn[0]; mx[0] = v > mx[0] ? v : mx[0];
        }
    }
    S->mn = fmin(fmin(mn[0], mn[1]), fmin(mn[2], mn[3]));
    S->mx = fmax(fmax(mx[0], mx[1]), fmax(mx[2], mx[3]));
    const double bdev = ((s[0] + s[1]) + (s[2] + s[3])) / (double)nb;  /* block mean - c */
    if (nb == m) {
        for (Py_ssize_t i = 0; i < m4; i += 4)
            for (int j = 0; j < 4; j++) { const double d = (xb[i + j] - c) - bdev; a[j] += d * d; }
        for (Py_ssize_t i = m4; i < m; i++) { const double d = (xb[i] - c) - bdev; a[0] += d * d; }
    } else {
        for (Py_ssize_t i = 0; i < m; i++) {
            const double d = (xb[i] - c) - bdev;
            a[0] += slot[i] >= 0 ? d * d : 0.0;
        }
    }
    const double bm2 = (a[0] + a[1]) + (a[2] + a[3]);
    if (S->n_fin == 0) {
        S->mean = bdev; S->m2 = bm2;
    } else {  /* Chan et al., both means taken from c */
        const double na = (double)S->n_fin, nn = na + (double)nb, delta = bdev - S->mean;
        S->mean += delta * ((double)nb / nn);
        S->m2 += bm2 + delta * delta * (na * (double)nb / nn);
    }
    S->n_fin += nb;
}

/* A batch as one float64 vector of any stride: contiguous values are read in place, strided
 * ones (a column of a row-major matrix) copied block by block. */
static int get_values(PyObject *obj, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 8 || view->format == NULL || strchr("d", view->format[0]) == NULL || view->ndim != 1) {
        PyErr_SetString(PyExc_TypeError, "values: expected one-dimensional float64 buffers");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void run_values(kstate *S, const Py_buffer *v) {
    const Py_ssize_t n = v->shape[0], stride = v->strides[0];
    const char *base = (const char *)v->buf;
    if (stride == 8) {
        for (Py_ssize_t s = 0; s < n; s += BLOCK)
            run_block(S, (const double *)base + s, n - s < BLOCK ? n - s : BLOCK);
        return;
    }
    double tmp[BLOCK];
    for (Py_ssize_t s = 0; s < n; s += BLOCK) {
        const Py_ssize_t m = n - s < BLOCK ? n - s : BLOCK;
        for (Py_ssize_t i = 0; i < m; i++) tmp[i] = *(const double *)(base + (s + i) * stride);
        run_block(S, tmp, m);
    }
}

/* histogram_update(edges, lut, values, counts, gaps, offgrid_or_None)
 * -> (n_finite, n_missing, mean, m2, min, max, tail_under_sq, tail_over_sq, offgrid_values)
 * values: a float64 vector, or a list or tuple of them (a flush's batches: no concatenation),
 * any stride. counts/gaps (and offgrid) are updated in place; offgrid_values is a float64 bytes
 * object of the off-grid values (discrete binnings only; empty otherwise). */
static PyObject *histogram_update(PyObject *self, PyObject *args) {
    PyObject *edges_obj, *lut_obj, *values_obj, *counts_obj, *gaps_obj, *offgrid_obj;
    if (!PyArg_ParseTuple(args, "OOOOOO", &edges_obj, &lut_obj, &values_obj, &counts_obj, &gaps_obj, &offgrid_obj))
        return NULL;
    Py_buffer ev, lv, cv, gv, ov;
    Py_buffer one, *xv = &one;
    Py_ssize_t n_parts = 0, got = 0, n = 0;
    PyObject *res = NULL, *seq = NULL;
    int have_off = offgrid_obj != Py_None;
    if (get_buffer(edges_obj, &ev, 0, "d", "edges") < 0) return NULL;
    if (PyObject_GetBuffer(lut_obj, &lv, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&ev); return NULL; }
    if (get_buffer(counts_obj, &cv, 1, "qlL", "counts") < 0) goto fail2;
    if (get_buffer(gaps_obj, &gv, 1, "d", "gaps") < 0) goto fail3;
    if (have_off && get_buffer(offgrid_obj, &ov, 1, "qlL", "offgrid") < 0) goto fail4;
    if (PyList_Check(values_obj) || PyTuple_Check(values_obj)) {
        seq = PySequence_Fast(values_obj, "values");
        if (seq == NULL) goto fail5;
        n_parts = PySequence_Fast_GET_SIZE(seq);
        xv = PyMem_Malloc((n_parts > 0 ? n_parts : 1) * sizeof(Py_buffer));
        if (xv == NULL) { PyErr_NoMemory(); goto fail5; }
        for (; got < n_parts; got++)
            if (get_values(PySequence_Fast_GET_ITEM(seq, got), &xv[got]) < 0) goto fail6;
    } else {
        n_parts = 1;
        if (get_values(values_obj, xv) < 0) goto fail5;
        got = 1;
    }
    for (Py_ssize_t p = 0; p < n_parts; p++) n += xv[p].shape[0];

    kstate S;
    S.e = (const double *)ev.buf;
    S.k = ev.len / 8;
    S.lut = (const int32_t *)lv.buf;
    S.size = lv.len / (Py_ssize_t)sizeof(int32_t) - 3;
    S.counts = (int64_t *)cv.buf;
    S.gaps = (double *)gv.buf;
    S.offgrid = have_off ? (int64_t *)ov.buf : NULL;
    const Py_ssize_t k = S.k;
    if (cv.len / 8 != k + 1 || gv.len / 8 != k + 1 || (have_off && ov.len / 8 != k + 1) || S.size < 1 || k < 1) {
        PyErr_SetString(PyExc_ValueError, "counts, gaps and offgrid need len(edges) + 1 slots");
        goto fail6;
    }
    S.j0 = inner_margin(k); S.j1 = k - 1 - S.j0;
    S.lo = S.e[0]; S.hi = S.e[k - 1]; S.ilo = S.e[S.j0]; S.ihi = S.e[S.j1];
    S.scale = S.ihi > S.ilo ? (double)S.size / (S.ihi - S.ilo) : 0.0;
    S.n_fin = 0; S.n_off = 0;
    S.c = 0.0; S.mean = 0.0; S.m2 = 0.0; S.tu = 0.0; S.to = 0.0; S.mn = INFINITY; S.mx = -INFINITY;
    S.offv = NULL;
    if (have_off) {
        S.offv = (double *)PyMem_Malloc((n > 0 ? n : 1) * sizeof(double));
        if (S.offv == NULL) { PyErr_NoMemory(); goto fail6; }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p = 0; p < n_parts; p++) run_values(&S, &xv[p]);
    Py_END_ALLOW_THREADS
    PyObject *off_bytes = PyBytes_FromStringAndSize((const char *)S.offv, (Py_ssize_t)(S.n_off * sizeof(double)));
    PyMem_Free(S.offv);
    if (off_bytes != NULL)
        res = Py_BuildValue("nnddddddN", S.n_fin, n - S.n_fin, S.c + S.mean, S.m2, S.mn, S.mx, S.tu, S.to, off_bytes);
fail6:
    for (Py_ssize_t p = 0; p < got; p++) PyBuffer_Release(&xv[p]);
    if (xv != &one) PyMem_Free(xv);
fail5:
    Py_XDECREF(seq);
    if (have_off) PyBuffer_Release(&ov);
fail4:
    PyBuffer_Release(&gv);
fail3:
    PyBuffer_Release(&cv);
fail2:
    PyBuffer_Release(&lv); PyBuffer_Release(&ev);
    return res;
}

/* take_rows(columns, rows, out, out_rows): out[out_rows[i], j] = columns[j][rows[i]] for every
 * i and j. columns: a list of float64 vectors of any stride, one per column of out; out: a
 * C-contiguous float64 matrix; rows and out_rows: int64 vectors of the same length. The
 * reservoir's rows taken from one batch, written in place without assembling them first.
 * Every index is checked before anything is written. */
static PyObject *take_rows(PyObject *self, PyObject *args) {
    PyObject *cols_obj, *rows_obj, *out_obj, *dst_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &cols_obj, &rows_obj, &out_obj, &dst_obj)) return NULL;
    PyObject *seq = PySequence_Fast(cols_obj, "columns must be a list");
    if (seq == NULL) return NULL;
    const Py_ssize_t f = PySequence_Fast_GET_SIZE(seq);
    Py_buffer rv, ov, dv;
    Py_buffer *cv = PyMem_Malloc((f > 0 ? f : 1) * sizeof(Py_buffer));
    Py_ssize_t got = 0;
    PyObject *res = NULL;
    if (cv == NULL) { Py_DECREF(seq); return PyErr_NoMemory(); }
    if (get_buffer(rows_obj, &rv, 0, "qlL", "rows") < 0) goto out0;
    if (get_buffer(dst_obj, &dv, 0, "qlL", "out_rows") < 0) goto out1;
    if (PyObject_GetBuffer(out_obj, &ov, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) goto out2;
    const Py_ssize_t n = rv.len / 8, cap = ov.ndim == 2 ? ov.shape[0] : 0;
    if (ov.ndim != 2 || ov.itemsize != 8 || ov.format == NULL || ov.format[0] != 'd' || ov.shape[1] != f) {
        PyErr_SetString(PyExc_ValueError, "out must be a float64 matrix with one column per column");
        goto out3;
    }
    if (dv.len / 8 != n) { PyErr_SetString(PyExc_ValueError, "rows and out_rows differ in length"); goto out3; }
    for (; got < f; got++)
        if (get_values(PySequence_Fast_GET_ITEM(seq, got), &cv[got]) < 0) goto out4;
    const int64_t *rows = (const int64_t *)rv.buf, *dst = (const int64_t *)dv.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (dst[i] < 0 || dst[i] >= cap) { PyErr_SetString(PyExc_IndexError, "out_rows out of range"); goto out4; }
        for (Py_ssize_t j = 0; j < f; j++)
            if (rows[i] < 0 || rows[i] >= cv[j].shape[0]) { PyErr_SetString(PyExc_IndexError, "rows out of range"); goto out4; }
    }
    double *o = (double *)ov.buf;
    for (Py_ssize_t j = 0; j < f; j++) {
        const char *base = (const char *)cv[j].buf;
        const Py_ssize_t stride = cv[j].strides[0];
        for (Py_ssize_t i = 0; i < n; i++) o[dst[i] * f + j] = *(const double *)(base + rows[i] * stride);
    }
    res = Py_None; Py_INCREF(res);
out4:
    for (Py_ssize_t j = 0; j < got; j++) PyBuffer_Release(&cv[j]);
out3:
    PyBuffer_Release(&ov);
out2:
    PyBuffer_Release(&dv);
out1:
    PyBuffer_Release(&rv);
out0:
    PyMem_Free(cv);
    Py_DECREF(seq);
    return res;
}

static PyMethodDef methods[] = {
    {"build_lut", build_lut, METH_VARARGS, "Lookup table of edge indices over [edges[0], edges[-1]]."},
    {"histogram_update", histogram_update, METH_VARARGS, "One-pass numeric histogram update."},
    {"take_rows", take_rows, METH_VARARGS, "out[out_rows[i], j] = columns[j][rows[i]]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_histogram", NULL, -1, methods};

PyMODINIT_FUNC PyInit__histogram(void) { return PyModule_Create(&module); }
