/* The column form's numbers straight from the JSON bytes into float64 buffers.
 *
 * scan_columns(body) reads a body of exactly the shape {"columns": {"<name>": <value>, ...}}
 * (any JSON whitespace) and returns a list of (name, start, end, numbers) per column, in body
 * order: start/end are the byte offsets of the column's JSON value, numbers a bytearray of
 * float64 (null -> NaN) when that value is an array of numbers and nulls, else None (the
 * caller decodes body[start:end] itself). It returns None for any other shape, a name with an
 * escape or a control character, or bytes that are not JSON as far as it looked: the caller
 * then decodes the whole body as before, so this is only ever a faster way to the same Batch.
 *
 * A number is parsed into a 64-bit decimal significand and a power of ten; with at most 19
 * significant digits and a power within +-27 both are exact in x87 extended precision, so the
 * quotient (or product) is one correctly rounded operation to 64 bits. Rounding that to a
 * double is then the correctly rounded double unless the 64-bit result lies within one unit
 * of a halfway point between doubles: those, and every number outside the fast range, are
 * read by strtod (correctly rounded in glibc). A number whose double would be infinite or
 * subnormal, or that is an integer of more than 19 digits, makes the column "not numbers"
 * (numbers None): the caller's decoder keeps its own rules for those. Checked bit for bit
 * against msgspec on generated numbers (tests/unit/worker/test_column_scan.py). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if LDBL_MANT_DIG == 64
#define FAST_EXTENDED 1
static const long double POW10[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L,
};
#else
#define FAST_EXTENDED 0
#endif

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Eight ASCII digits at once (SWAR, little-endian: the first digit in the low byte). */
static inline uint64_t load8(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* How many of the 8 bytes, from the first, are digits (0..8). */
static inline int digit_run8(uint64_t v) {
    const uint64_t x = v ^ 0x3030303030303030ULL;  /* digits -> 0..9 */
    const uint64_t bad =
        (((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
    return bad ? __builtin_ctzll(bad) >> 3 : 8;
}

/* The value of the first n (1..8) digits of v. */
static inline uint64_t value_n(uint64_t v, int n) {
    uint64_t d = (v - 0x3030303030303030ULL) << (8 * (8 - n));  /* zeros ahead of them */
    d = (d * 10) + (d >> 8);
    return (((d & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
            (((d >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32;
}

static const uint64_t POW10U[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static const double POW10D[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* strtod of [start, stop): 1 and *out when the double is finite and normal (or zero). */
static int slow_number(const char *start, const char *stop, double *out) {
    char small[64];
    const size_t len = (size_t)(stop - start);
    char *buf = len < sizeof(small) ? small : (char *)malloc(len + 1);
    if (buf == NULL) return 0;
    memcpy(buf, start, len);
    buf[len] = '\0';
    char *tail;
    const double v = strtod(buf, &tail);
    const int ok = tail == buf + len && isfinite(v) && (v == 0.0 || fabs(v) >= DBL_MIN);
    if (buf != small) free(buf);
    if (ok) *out = v;
    return ok;
}

/* One JSON number at *pp (strict grammar). 1: *out set, *pp past it; 0: not a number we read. */
static int parse_number(const char **pp, const char *end, double *out) {
    const char *p = *pp, *start = p;
    int neg = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return 0;
    uint64_t m = 0;
    int digits = 0, exp10 = 0, dropped = 0, integer = 1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (digits <= 11 && end - p >= 8) {  /* 8 bytes at a time, no loop per digit */
            const uint64_t v = load8(p);
            const int n = digit_run8(v);
            if (n == 0) break;
            m = m * POW10U[n] + value_n(v, n);
            digits += n;
            p += n;
            if (n < 8) break;
        }
        while (p < end && is_digit(*p)) {
            if (digits < 19) { m = m * 10 + (uint64_t)(*p - '0'); digits++; }
            else { exp10++; dropped = 1; }
            p++;
        }
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (p >= end || !is_digit(*p)) return 0;
        /* Leading zeros of a fraction count as digits here (capacity only: a long one then
         * takes the digit-by-digit way below, which skips them). */
        while (digits <= 11 && end - p >= 8) {
            const uint64_t v = load8(p);
            const int n = digit_run8(v);
            if (n == 0) break;
            m = m * POW10U[n] + value_n(v, n);
            digits += n;
            exp10 -= n;
            p += n;
            if (n < 8) break;
        }
        while (p < end && is_digit(*p)) {
            const int d = *p - '0';
            if (m == 0 && d == 0) exp10--;  /* leading zeros: no significant digit yet */
            else if (digits < 19) { m = m * 10 + (uint64_t)d; digits++; exp10--; }
            else if (d != 0) dropped = 1;
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
        if (p >= end || !is_digit(*p)) return 0;
        while (p < end && is_digit(*p)) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-' || is_digit(*p)))
        return 0;  /* "01", "1.2.3", ...: not JSON */
    if (dropped && integer) return 0;  /* an integer beyond 19 digits: the caller's rules */
    double v;
    if (m == 0) {
        if (integer) neg = 0;  /* "-0" is the integer 0, as msgspec reads it */
        v = 0.0;
    } else {
        int done = 0;
        if (!dropped && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
            /* both exact in a double: one correctly rounded operation */
            v = exp10 < 0 ? (double)m / POW10D[-exp10] : (double)m * POW10D[exp10];
            done = 1;
        }
#if FAST_EXTENDED
        if (!done && !dropped && exp10 >= -27 && exp10 <= 27) {
            long double x = (long double)m;
            x = exp10 < 0 ? x / POW10[-exp10] : x * POW10[exp10];
            uint64_t bits;
            memcpy(&bits, &x, sizeof(bits));  /* the explicit 64-bit significand */
            const unsigned low = (unsigned)(bits & 0x7FF);
            if (low < 0x3FF || low > 0x401) {  /* not within one unit of a halfway point */
                v = (double)x;
                done = 1;
            }
        }
#endif
        if (!done) {
            if (!slow_number(neg ? start + 1 : start, p, &v)) return 0;
        }
    }
    *out = neg ? -v : v;
    *pp = p;
    return 1;
}

/* Past one JSON value at p (strings with escapes, nesting); NULL when malformed. */
static const char *skip_value(const char *p, const char *end) {
    int depth = 0;
    do {
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        const char c = *p;
        if (c == '"') {
            p++;
            while (p < end && *p != '"') {
                if (*p == '\\') p++;
                p++;
            }
            if (p >= end) return NULL;
            p++;
        } else if (c == '[' || c == '{') {
            depth++;
            p++;
            continue;
        } else if (c == ']' || c == '}') {
            if (depth == 0) return NULL;
            depth--;
            p++;
        } else if (c == ',' || c == ':') {
            if (depth == 0) return NULL;
            p++;
            continue;
        } else {
            const char *q = p;
            while (q < end && *q != ',' && *q != ']' && *q != '}' && *q != ' ' && *q != '\n' &&
                   *q != '\r' && *q != '\t' && *q != ':')
                q++;
            if (q == p) return NULL;
            p = q;
        }
    } while (depth > 0);
    return p;
}

/* An array of numbers and nulls at p ('['): a bytearray of float64, *pp past it; NULL when
 * the array holds anything else (no Python error set) or on a memory error (set). */
static PyObject *number_array(const char **pp, const char *end) {
    const char *p = *pp + 1;
    Py_ssize_t cap = 1024, n = 0;
    double *buf = (double *)PyMem_Malloc((size_t)cap * sizeof(double));
    if (buf == NULL) return PyErr_NoMemory();
    p = skip_ws(p, end);
    if (p < end && *p == ']') {
        p++;
    } else {
        for (;;) {
            p = skip_ws(p, end);
            if (p >= end) goto not_numbers;
            if (n == cap) {
                cap *= 2;
                double *grown = (double *)PyMem_Realloc(buf, (size_t)cap * sizeof(double));
                if (grown == NULL) { PyMem_Free(buf); return PyErr_NoMemory(); }
                buf = grown;
            }
            if (*p == 'n') {
                if (end - p < 4 || memcmp(p, "null", 4) != 0) goto not_numbers;
                buf[n++] = NAN;
                p += 4;
            } else if (!parse_number(&p, end, &buf[n++])) {
                goto not_numbers;
            }
            p = skip_ws(p, end);
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == ']') { p++; break; }
            goto not_numbers;
        }
    }
    PyObject *out = PyByteArray_FromStringAndSize((const char *)buf, n * (Py_ssize_t)sizeof(double));
    PyMem_Free(buf);
    if (out != NULL) *pp = p;
    return out;
not_numbers:
    PyMem_Free(buf);
    return NULL;
}

static PyObject *scan_columns(PyObject *Py_UNUSED(self), PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *base = (const char *)view.buf, *end = base + view.len, *p = base;
    PyObject *out = PyList_New(0);
    if (out == NULL) { PyBuffer_Release(&view); return NULL; }
    p = skip_ws(p, end);
    if (p >= end || *p != '{') goto other;
    p = skip_ws(p + 1, end);
    if (end - p < 9 || memcmp(p, "\"columns\"", 9) != 0) goto other;
    p = skip_ws(p + 9, end);
    if (p >= end || *p != ':') goto other;
    p = skip_ws(p + 1, end);
    if (p >= end || *p != '{') goto other;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            p = skip_ws(p, end);
            if (p >= end || *p != '"') goto other;
            const char *k0 = ++p;
            while (p < end && *p != '"') {
                if (*p == '\\' || (unsigned char)*p < 0x20) goto other;
                p++;
            }
            if (p >= end) goto other;
            const char *k1 = p++;
            p = skip_ws(p, end);
            if (p >= end || *p != ':') goto other;
            p = skip_ws(p + 1, end);
            const char *v0 = p;
            PyObject *numbers = NULL;
            if (p < end && *p == '[') {
                numbers = number_array(&p, end);
                if (numbers == NULL && PyErr_Occurred()) goto error;
            }
            if (numbers == NULL) {
                p = skip_value(v0, end);
                if (p == NULL) goto other;
                numbers = Py_None;
                Py_INCREF(numbers);
            }
            PyObject *key = PyUnicode_DecodeUTF8(k0, k1 - k0, "strict");
            if (key == NULL) { Py_DECREF(numbers); PyErr_Clear(); goto other; }
            PyObject *item = Py_BuildValue("(NnnN)", key, (Py_ssize_t)(v0 - base), (Py_ssize_t)(p - base), numbers);
            if (item == NULL || PyList_Append(out, item) < 0) { Py_XDECREF(item); goto error; }
            Py_DECREF(item);
            p = skip_ws(p, end);
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == '}') { p++; break; }
            goto other;
        }
    }
    p = skip_ws(p, end);
    if (p >= end || *p != '}') goto other;
    p = skip_ws(p + 1, end);
    if (p != end) goto other;
    PyBuffer_Release(&view);
    return out;
other:
    Py_DECREF(out);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
error:
    Py_DECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_columns", scan_columns, METH_O, "The column form's columns, numbers as float64."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_columns", NULL, -1, methods};

PyMODINIT_FUNC PyInit__columns(void) { return PyModule_Create(&module); }
