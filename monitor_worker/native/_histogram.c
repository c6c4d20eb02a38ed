/* The numeric histogram update of monitor_worker.stats.sketches in one pass over a batch:
 * slot of each value (a lookup table over the edges, then a binary search in a few edges),
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

/* The cell of a value inside [edges[0], edges[-1]): the same expression in build_lut and the
 * update, so both agree bit for bit. Monotonic in v. */
static inline Py_ssize_t cell_of(double v, double lo, double scale, Py_ssize_t size) {
    Py_ssize_t t = (Py_ssize_t)((v - lo) * scale);
    return t > size ? size : (t < 0 ? 0 : t);
}

/* build_lut(edges, size) -> bytes: lut[t] (int32, t = 0..size+1) is the number of edges whose
 * cell is below t. Since cells are monotonic, a value of cell t has every edge of a lower cell
 * at or below it and every edge of a higher cell above it: its slot is in [lut[t], lut[t+1]],
 * found by a search among the edges of its own cell only. */
static PyObject *build_lut(PyObject *self, PyObject *args) {
    PyObject *edges_obj; Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "On", &edges_obj, &size)) return NULL;
    if (size < 1) { PyErr_SetString(PyExc_ValueError, "size must be >= 1"); return NULL; }
    Py_buffer ev;
    if (get_buffer(edges_obj, &ev, 0, "d", "edges") < 0) return NULL;
    const double *e = (const double *)ev.buf;
    Py_ssize_t k = ev.len / 8;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (size + 2) * (Py_ssize_t)sizeof(int32_t));
    if (out == NULL) { PyBuffer_Release(&ev); return NULL; }
    int32_t *lut = (int32_t *)PyBytes_AS_STRING(out);
    const double lo = e[0], hi = e[k - 1];
    const double scale = hi > lo ? (double)size / (hi - lo) : 0.0;
    memset(lut, 0, (size + 2) * sizeof(int32_t));
    for (Py_ssize_t j = 0; j < k; j++) lut[cell_of(e[j], lo, scale, size) + 1] += 1;
    for (Py_ssize_t t = 1; t <= size + 1; t++) lut[t] += lut[t - 1];  /* counts of cells < t */
    PyBuffer_Release(&ev);
    return out;
}

/* histogram_update(edges, lut, values, counts, gaps, offgrid_or_None)
 * -> (n_finite, n_missing, mean, m2, min, max, tail_under_sq, tail_over_sq, offgrid_values)
 * counts/gaps (and offgrid) are updated in place; offgrid_values is a float64 bytes object of
 * the off-grid values (discrete binnings only; empty otherwise). */
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
    const Py_ssize_t size = lv.len / (Py_ssize_t)sizeof(int32_t) - 2;
    const double *x = (const double *)xv.buf;
    const Py_ssize_t n = xv.len / 8;
    int64_t *counts = (int64_t *)cv.buf;
    double *gaps = (double *)gv.buf;
    int64_t *offgrid = have_off ? (int64_t *)ov.buf : NULL;
    if (cv.len / 8 != k + 1 || gv.len / 8 != k + 1 || (have_off && ov.len / 8 != k + 1) || size < 1) {
        PyErr_SetString(PyExc_ValueError, "counts, gaps and offgrid need len(edges) + 1 slots");
        goto fail6;
    }
    const double lo = e[0], hi = e[k - 1];
    const double scale = hi > lo ? (double)size / (hi - lo) : 0.0;
    Py_ssize_t n_fin = 0, n_off = 0;
    double sum = 0.0, mn = INFINITY, mx = -INFINITY, tu = 0.0, to = 0.0;
    double *offv = NULL;
    if (have_off) {
        offv = (double *)PyMem_Malloc((n > 0 ? n : 1) * sizeof(double));
        if (offv == NULL) { PyErr_NoMemory(); goto fail6; }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const double v = x[i];
        if (!isfinite(v)) continue;
        n_fin++;
        sum += v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        Py_ssize_t idx;
        double gap;
        if (v < lo) {
            idx = 0; gap = lo - v; tu += gap * gap;
        } else if (v >= hi) {
            idx = k; gap = v - hi; to += gap * gap;
        } else {
            const Py_ssize_t t = cell_of(v, lo, scale, size);
            const Py_ssize_t a = lut[t];
            Py_ssize_t len = lut[t + 1] - a;
            if (len == 0) {
                idx = a;
            } else {
                /* Branchless search among the edges of this cell (a few): conditional moves,
                 * no mispredictions on random data. */
                const double *base = e + a;
                while (len > 1) {
                    const Py_ssize_t half = len >> 1;
                    base = (base[half] <= v) ? base + half : base;
                    len -= half;
                }
                idx = (base - e) + (*base <= v);
            }
            gap = v - e[idx - 1];
        }
        counts[idx] += 1;
        gaps[idx] += gap;
        if (offgrid != NULL && (idx == 0 || e[idx - 1] != v)) {
            offgrid[idx] += 1;
            offv[n_off++] = v;
        }
    }
    Py_END_ALLOW_THREADS
    double mean = n_fin ? sum / (double)n_fin : 0.0, m2 = 0.0;
    if (n_fin) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const double v = x[i];
            if (isfinite(v)) { const double d = v - mean; m2 += d * d; }
        }
        Py_END_ALLOW_THREADS
    }
    PyObject *off_bytes = PyBytes_FromStringAndSize((const char *)offv, (Py_ssize_t)(n_off * sizeof(double)));
    PyMem_Free(offv);
    if (off_bytes == NULL) goto fail6;
    PyObject *res = Py_BuildValue("nnddddddN", n_fin, n - n_fin, mean, m2, mn, mx, tu, to, off_bytes);
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
