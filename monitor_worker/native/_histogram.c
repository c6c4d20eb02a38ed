/* The numeric histogram update of monitor_worker.stats.sketches in one pass over a batch:
 * slot of each value (a lookup table over the inner edges, then at most one comparison; a short
 * binary search beyond them or where a cell holds several edges),
 * counts, gaps to the slot's left edge, tail squares, moments, min/max and, for discrete
 * binnings, the values that are not a reference value. Replaces sort + searchsorted +
 * bincount (x3) + moments in numpy, which read every value five to eight times.
 *
 * Written against the buffer protocol only (no numpy C API): the Python side passes
 * C-contiguous float64 / int64 arrays and checks shapes. Results equal the numpy path up to
 * the order of floating additions (tests/unit/stats/test_native.py). */
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

/* The slot and gap of value xb[i] into slot[i] and gap[i], -1 for NaN/inf; sums, minima and
 * maxima in four lanes (j) so that no chain of floating operations sets the pace. */
#define SLOT_OF(i, SUM, MN, MX) do {                                                                    \
    const double v = xb[i];                                                                   \
    Py_ssize_t idx;                                                                           \
    if (v >= ilo && v < ihi) {  /* the usual case */                                         \
        const Py_ssize_t c = cell_of(v, ilo, scale, size);                                   \
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
    n_fin++;                                                                                  \
    SUM += v;                                                                                 \
    MN = v < MN ? v : MN;                                                                     \
    MX = v > MX ? v : MX;                                                                     \
} while (0)


/* histogram_update(edges, lut, values, counts, gaps, offgrid_or_None)
 * -> (n_finite, n_missing, mean, m2, min, max, tail_under_sq, tail_over_sq, offgrid_values)
 * counts/gaps (and offgrid) are updated in place; offgrid_values is a float64 bytes object of
 * the off-grid values (discrete binnings only; empty otherwise).
 *
 * Block by block: first every value's slot and gap (no dependence between values), then the
 * counts and gaps (a scatter), then the moments with four accumulators each, so no chain of
 * floating additions sets the pace. */
static PyObject *histogram_update(PyObject *self, PyObject *args) {
    PyObject *edges_obj, *lut_obj, *values_obj, *counts_obj, *gaps_obj, *offgrid_obj;
    if (!PyArg_ParseTuple(args, "OOOOOO", &edges_obj, &lut_obj, &values_obj, &counts_obj, &gaps_obj, &offgrid_obj))
        return NULL;
    Py_buffer ev, lv, xv, cv, gv, ov;
    int have_off = offgrid_obj != Py_None;
    if (get_buffer(edges_obj, &ev, 0, "d", "edges") < 0) return NULL;
    if (PyObject_GetBuffer(lut_obj, &lv, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&ev); return NULL; }
    if (get_buffer(values_obj, &xv, 0, "d", "values") < 0) { PyBuffer_Release(&ev); PyBuffer_Release(&lv); return NULL; }
    if (get_buffer(counts_obj, &cv, 1, "qlL", "counts") < 0) goto fail3;
    if (get_buffer(gaps_obj, &gv, 1, "d", "gaps") < 0) goto fail4;
    if (have_off && get_buffer(offgrid_obj, &ov, 1, "qlL", "offgrid") < 0) goto fail5;

    const double *e = (const double *)ev.buf;
    const Py_ssize_t k = ev.len / 8;
    const int32_t *lut = (const int32_t *)lv.buf;
    const Py_ssize_t size = lv.len / (Py_ssize_t)sizeof(int32_t) - 3;
    const double *x = (const double *)xv.buf;
    const Py_ssize_t n = xv.len / 8;
    int64_t *counts = (int64_t *)cv.buf;
    double *gaps = (double *)gv.buf;
    int64_t *offgrid = have_off ? (int64_t *)ov.buf : NULL;
    if (cv.len / 8 != k + 1 || gv.len / 8 != k + 1 || (have_off && ov.len / 8 != k + 1) || size < 1 || k < 1) {
        PyErr_SetString(PyExc_ValueError, "counts, gaps and offgrid need len(edges) + 1 slots");
        goto fail6;
    }
    const Py_ssize_t j0 = inner_margin(k), j1 = k - 1 - j0;
    const double lo = e[0], hi = e[k - 1], ilo = e[j0], ihi = e[j1];
    const double scale = ihi > ilo ? (double)size / (ihi - ilo) : 0.0;
    Py_ssize_t n_fin = 0, n_off = 0;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, tu = 0.0, to = 0.0;
    double mn0 = INFINITY, mn1 = INFINITY, mn2 = INFINITY, mn3 = INFINITY;
    double mx0 = -INFINITY, mx1 = -INFINITY, mx2 = -INFINITY, mx3 = -INFINITY;
    double *offv = NULL;
    if (have_off) {
        offv = (double *)PyMem_Malloc((n > 0 ? n : 1) * sizeof(double));
        if (offv == NULL) { PyErr_NoMemory(); goto fail6; }
    }
    Py_BEGIN_ALLOW_THREADS
    int32_t slot[BLOCK];
    double gap[BLOCK];
    for (Py_ssize_t s = 0; s < n; s += BLOCK) {
        const Py_ssize_t m = n - s < BLOCK ? n - s : BLOCK;
        const double *xb = x + s;
        Py_ssize_t i = 0;
        for (; i + 4 <= m; i += 4) {
            SLOT_OF(i, s0, mn0, mx0);
            SLOT_OF(i + 1, s1, mn1, mx1);
            SLOT_OF(i + 2, s2, mn2, mx2);
            SLOT_OF(i + 3, s3, mn3, mx3);
        }
        for (; i < m; i++) SLOT_OF(i, s0, mn0, mx0);
        for (Py_ssize_t i = 0; i < m; i++) {
            const int32_t idx = slot[i];
            if (idx < 0) continue;
            counts[idx] += 1;
            gaps[idx] += gap[i];
            if (offgrid != NULL && (idx == 0 || e[idx - 1] != xb[i])) {
                offgrid[idx] += 1;
                offv[n_off++] = xb[i];
            }
        }
    }
    Py_END_ALLOW_THREADS
    const double total = (s0 + s1) + (s2 + s3);
    const double lo_v = fmin(fmin(mn0, mn1), fmin(mn2, mn3));
    const double hi_v = fmax(fmax(mx0, mx1), fmax(mx2, mx3));
    double mean = n_fin ? total / (double)n_fin : 0.0, m2 = 0.0;
    if (n_fin) {
        double acc[4] = {0, 0, 0, 0};
        Py_BEGIN_ALLOW_THREADS
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            for (int j = 0; j < 4; j++) {
                const double d = x[i + j] - mean;
                acc[j] += isfinite(x[i + j]) ? d * d : 0.0;
            }
        }
        for (; i < n; i++) {
            const double d = x[i] - mean;
            acc[0] += isfinite(x[i]) ? d * d : 0.0;
        }
        Py_END_ALLOW_THREADS
        m2 = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    PyObject *off_bytes = PyBytes_FromStringAndSize((const char *)offv, (Py_ssize_t)(n_off * sizeof(double)));
    PyMem_Free(offv);
    if (off_bytes == NULL) goto fail6;
    PyObject *res = Py_BuildValue("nnddddddN", n_fin, n - n_fin, mean, m2, lo_v, hi_v, tu, to, off_bytes);
    if (have_off) PyBuffer_Release(&ov);
    PyBuffer_Release(&gv); PyBuffer_Release(&cv); PyBuffer_Release(&xv); PyBuffer_Release(&lv); PyBuffer_Release(&ev);
    return res;
fail6:
    if (have_off) PyBuffer_Release(&ov);
fail5:
    PyBuffer_Release(&gv);
fail4:
    PyBuffer_Release(&cv);
fail3:
    PyBuffer_Release(&xv); PyBuffer_Release(&lv); PyBuffer_Release(&ev);
    return NULL;
}

static PyMethodDef methods[] = {
    {"build_lut", build_lut, METH_VARARGS, "Lookup table of edge indices over [edges[0], edges[-1]]."},
    {"histogram_update", histogram_update, METH_VARARGS, "One-pass numeric histogram update."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_histogram", NULL, -1, methods};

PyMODINIT_FUNC PyInit__histogram(void) { return PyModule_Create(&module); }
