/*
 * wsio.protocol._speedups: C versions of the hot functions of
 * wsio.protocol.frames (apply_mask, parse_frames, parse_messages, build_frame).
 *
 * The pure-Python functions in frames.py are the reference: these take the
 * same arguments and return the same values, types and (close_code, reason)
 * tuples with the same reasons. tests/protocol/test_speedups.py checks that
 * with hypothesis. Two deliberate differences, both on inputs that are caller
 * bugs and on which the reference returns garbage rather than an error:
 *   - a mask that is not 4 bytes raises ValueError;
 *   - a negative pos in parse_frames raises ValueError.
 *
 * Why C: masking is a byte-wise XOR that Python can only do through a big
 * integer (three conversions of the payload), and the parse loop creates a
 * handful of Python objects per header. Here each payload is written once,
 * straight into the bytes object that is returned.
 *
 * Plain C API on purpose: the limited API has no PyBytes_AS_STRING or
 * PyTuple_SET_ITEM macros, and the loop lives on those.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define WSIO_SSE2 1
#endif

/* No AVX2 path: on x86-64 (EPYC), 32-byte vectors picked at run time gained
   nothing measurable over SSE2; past a few KiB masking is bound by the caches
   and memory, not by the XOR. */

/* Payloads at least this big are masked or copied without the GIL, so other
   threads run meanwhile (measured: two threads masking 4 MiB payloads got
   1.7x the throughput of one; with the GIL held, 1x). Dropping and retaking an
   uncontended GIL costs ~60 ns: 3% of a 64 KiB mask, more than a small one. */
#define RELEASE_GIL_AT (1 << 16)

/* ------------------------------------------------------------------------ */
/* Masking                                                                  */
/* ------------------------------------------------------------------------ */

/* XOR src[0:n] into dst with the key rotated to phase `phase`, 8 bytes at a
   time in plain C; every block size is a multiple of 4, so the key stays in
   phase from one loop to the next. */
static inline void
mask_tail(unsigned char *dst, const unsigned char *src, size_t i, size_t n,
          const unsigned char k[8], uint64_t key)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= key;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ k[i & 3];
    }
}

/* dst[i] = src[i] ^ mask[(i + phase) & 3] for i < n; dst and src differ. */
static void
mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
          const unsigned char *mask, unsigned phase)
{
    unsigned char k[8];
    uint64_t key;
    size_t i = 0;
    int j;

    for (j = 0; j < 8; j++) {
        k[j] = mask[(j + phase) & 3];
    }
    memcpy(&key, k, 8); /* memory order: no endianness question */
#ifdef WSIO_SSE2
    if (n >= 16) {
        const __m128i vk = _mm_set1_epi64x((long long)key);
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, vk));
            _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, vk));
            _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, vk));
            _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, vk));
        }
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, vk));
        }
    }
#endif
    mask_tail(dst, src, i, n, k, key);
}

/* Mask (mask != NULL) or copy n bytes, without the GIL when n is big. The
   caller holds a buffer view on src, so it can't be resized or freed, and dst
   belongs to a bytes object no one else has seen yet. */
static void
fill_payload(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
             const unsigned char *mask, unsigned phase)
{
    if (n >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        if (mask != NULL) {
            mask_copy(dst, src, (size_t)n, mask, phase);
        }
        else {
            memcpy(dst, src, (size_t)n);
        }
        Py_END_ALLOW_THREADS
    }
    else if (mask != NULL) {
        mask_copy(dst, src, (size_t)n, mask, phase);
    }
    else if (n > 0) {
        memcpy(dst, src, (size_t)n);
    }
}

/* ------------------------------------------------------------------------ */
/* Argument helpers                                                         */
/* ------------------------------------------------------------------------ */

/* METH_FASTCALL argument parsing, positional or keyword like the Python
   signatures; no tuple or dict is built for a call. */
static int
parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, const char *const *names, Py_ssize_t nreq,
           Py_ssize_t nmax, PyObject **out)
{
    Py_ssize_t i, k, nkw;

    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes at most %zd positional arguments (%zd given)",
                     fname, nmax, nargs);
        return -1;
    }
    for (i = 0; i < nmax; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        for (i = 0; i < nmax; i++) {
            if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                break;
            }
        }
        if (i == nmax) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%U'", fname, key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got multiple values for argument '%s'", fname, names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() missing required argument '%s' (pos %zd)",
                         fname, names[i], i + 1);
            return -1;
        }
    }
    return 0;
}

/* A contiguous byte view of any buffer. Non-contiguous memoryviews (which the
   reference accepts through len() and int.from_bytes()) go through a copy;
   *tmp then owns it and must be released after the view. */
static int
get_view(PyObject *obj, Py_buffer *view, PyObject **tmp)
{
    *tmp = NULL;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_BufferError) || !PyMemoryView_Check(obj)) {
        return -1;
    }
    PyErr_Clear();
    *tmp = PyBytes_FromObject(obj);
    if (*tmp == NULL) {
        return -1;
    }
    if (PyObject_GetBuffer(*tmp, view, PyBUF_SIMPLE) < 0) {
        Py_CLEAR(*tmp);
        return -1;
    }
    return 0;
}

static void
release_view(Py_buffer *view, PyObject *tmp)
{
    PyBuffer_Release(view);
    Py_XDECREF(tmp);
}

/* The 4 mask bytes, or -1 with ValueError: a key of another length is a bug
   in the caller, and silently masking with it would corrupt the stream. */
static int
get_mask(PyObject *obj, unsigned char out[4])
{
    Py_buffer view;
    PyObject *tmp;
    Py_ssize_t len;

    if (get_view(obj, &view, &tmp) < 0) {
        return -1;
    }
    len = view.len;
    if (len == 4) {
        memcpy(out, view.buf, 4);
    }
    release_view(&view, tmp);
    if (len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes, not %zd", len);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* apply_mask                                                               */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask, offset=0)\n--\n\n"
"XOR ``data`` with the 4-byte ``mask``, starting at byte ``offset`` of the\n"
"mask; return a new bytes object. Masking is its own inverse.");

/* Why: the Python version converts the payload to an int and back; this one
   writes each byte once, 16-32 bytes per instruction, into the result. */
static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"data", "mask", "offset"};
    PyObject *argv[3], *tmp, *result = NULL;
    Py_buffer data;
    unsigned char mask[4];
    unsigned phase = 0;

    (void)module;
    if (parse_args("apply_mask", args, nargs, kwnames, names, 2, 3, argv) < 0) {
        return NULL;
    }
    if (get_view(argv[0], &data, &tmp) < 0) {
        return NULL;
    }
    if (get_mask(argv[1], mask) < 0) {
        goto done;
    }
    if (data.len == 0) {
        /* Like the reference, offset is not even looked at. */
        result = PyBytes_FromStringAndSize(NULL, 0);
        goto done;
    }
    if (argv[2] != NULL) {
        /* offset & 3, with Python's semantics for any int (or __and__). */
        PyObject *offset = argv[2];
        long low;
        if (PyLong_CheckExact(offset)) {
            int overflow;
            long long v = PyLong_AsLongLongAndOverflow(offset, &overflow);
            if (v == -1 && PyErr_Occurred()) {
                goto done;
            }
            if (!overflow) {
                phase = (unsigned)(v & 3);
                goto masked;
            }
        }
        {
            PyObject *three = PyLong_FromLong(3), *anded;
            if (three == NULL) {
                goto done;
            }
            anded = PyNumber_And(offset, three);
            Py_DECREF(three);
            if (anded == NULL) {
                goto done;
            }
            low = PyLong_AsLong(anded);
            Py_DECREF(anded);
            if (low == -1 && PyErr_Occurred()) {
                goto done;
            }
            phase = (unsigned)(low & 3);
        }
    }
masked:
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        fill_payload((unsigned char *)PyBytes_AS_STRING(result),
                     (const unsigned char *)data.buf, data.len, mask, phase);
    }
done:
    release_view(&data, tmp);
    return result;
}

/* ------------------------------------------------------------------------ */
/* parse_frames                                                             */
/* ------------------------------------------------------------------------ */

/* expect_masked and rsv1_ok are compared and tested for truth the way the
   reference does, and only when the reference would (so any object gives the
   same answer); the results are cached for the rest of the call. */
typedef struct {
    PyObject *expect_masked;
    PyObject *rsv1_ok;
    int ne[2];        /* (bool(masked) != expect_masked) for masked = 0, 1 */
    int expect_true;  /* bool(expect_masked) */
    int rsv1_true;    /* bool(rsv1_ok) */
} Flags;

static int
cached_truth(int *slot, PyObject *obj)
{
    if (*slot < 0) {
        *slot = PyObject_IsTrue(obj);
    }
    return *slot;
}

static int
masked_ne(Flags *f, int masked)
{
    if (f->ne[masked] < 0) {
        f->ne[masked] = PyObject_RichCompareBool(masked ? Py_True : Py_False,
                                                 f->expect_masked, Py_NE);
    }
    return f->ne[masked];
}

/* *err = (1002, reason); return 1 (or -1 on memory error). */
static int
protocol_error(PyObject **err, PyObject *reason)
{
    if (reason == NULL) {
        return -1;
    }
    *err = Py_BuildValue("(iN)", 1002, reason);
    return *err == NULL ? -1 : 1;
}

/* check_header from frames.py, test for test and reason for reason:
   0 if the header is fine, 1 with *err set if it breaks RFC 6455, -1 on an
   exception. */
static int
check_header(unsigned head, uint64_t length, int masked, Flags *f, PyObject **err)
{
    unsigned opcode = head & 0x0F;
    int r;

    r = masked_ne(f, masked);
    if (r != 0) {
        if (r < 0 || (r = cached_truth(&f->expect_true, f->expect_masked)) < 0) {
            return -1;
        }
        return protocol_error(err, PyUnicode_FromString(
            r ? "peer sent an unmasked frame" : "peer sent a masked frame"));
    }
    if (head & 0x70) {
        if (!(head & 0x30)) {
            if ((r = cached_truth(&f->rsv1_true, f->rsv1_ok)) < 0) {
                return -1;
            }
        }
        if ((head & 0x30) || !r) {
            return protocol_error(err, PyUnicode_FromString(
                "peer set a reserved bit without an extension that allows it"));
        }
        if (opcode == 0 || opcode >= 8) {
            return protocol_error(err, PyUnicode_FromString(
                "peer set RSV1 on a continuation or control frame"));
        }
    }
    if (opcode >= 8) {
        if (opcode > 0xA) {
            return protocol_error(err, PyUnicode_FromFormat(
                "peer sent a frame with reserved opcode %u", opcode));
        }
        if (!(head & 0x80)) {
            return protocol_error(err, PyUnicode_FromString(
                "peer sent a fragmented control frame"));
        }
        if (length > 125) {
            return protocol_error(err, PyUnicode_FromFormat(
                "peer sent a control frame of %llu bytes; the limit is 125",
                (unsigned long long)length));
        }
    }
    else if (opcode > 2) {
        return protocol_error(err, PyUnicode_FromFormat(
            "peer sent a frame with reserved opcode %u", opcode));
    }
    if (length >> 63) {
        return protocol_error(err, PyUnicode_FromString(
            "peer sent a 64-bit length with the most significant bit set"));
    }
    return 0;
}

PyDoc_STRVAR(parse_frames_doc,
"parse_frames(buf, pos, expect_masked, rsv1_ok)\n--\n\n"
"Parse every complete frame in ``buf`` from ``pos``; return ``(frames, pos,\n"
"error)`` exactly like :func:`wsio.protocol.frames.parse_frames`.");

/* Why: one pass over the buffer with a C offset; per frame the only Python
   objects made are the payload (written once, unmasked on the way in) and
   its (head, payload) tuple. */
/* The frame header at b[pos:end] (RFC 6455 5.2): its payload length, where
   the payload starts and its masking key (NULL if unmasked). Returns 0 when
   the header is whole, -1 when more bytes are needed. Nothing is checked
   here: each parser checks what it accepts. */
static inline int
read_header(const unsigned char *b, Py_ssize_t pos, Py_ssize_t end,
            uint64_t *length_out, Py_ssize_t *start_out, const unsigned char **mask_out)
{
    unsigned second = b[pos + 1];
    uint64_t length = second & 0x7F;
    Py_ssize_t p = pos + 2;

    if (length == 126) {
        if (end - p < 2) {
            return -1;
        }
        length = ((uint64_t)b[p] << 8) | b[p + 1];
        p += 2;
    }
    else if (length == 127) {
        if (end - p < 8) {
            return -1;
        }
        length = ((uint64_t)b[p] << 56) | ((uint64_t)b[p + 1] << 48) |
                 ((uint64_t)b[p + 2] << 40) | ((uint64_t)b[p + 3] << 32) |
                 ((uint64_t)b[p + 4] << 24) | ((uint64_t)b[p + 5] << 16) |
                 ((uint64_t)b[p + 6] << 8) | (uint64_t)b[p + 7];
        p += 8;
    }
    *mask_out = NULL;
    if (second & 0x80) {
        if (end - p < 4) {
            return -1;
        }
        *mask_out = b + p;
        p += 4;
    }
    *length_out = length;
    *start_out = p;
    return 0;
}

static PyObject *
parse_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"buf", "pos", "expect_masked", "rsv1_ok"};
    PyObject *argv[4], *tmp, *frames = NULL, *error = NULL, *pos_out, *result;
    Py_buffer view;
    const unsigned char *b;
    Py_ssize_t end, pos, first;
    Flags flags;

    (void)module;
    if (parse_args("parse_frames", args, nargs, kwnames, names, 4, 4, argv) < 0) {
        return NULL;
    }
    if (get_view(argv[0], &view, &tmp) < 0) {
        return NULL;
    }
    /* Clamps on overflow: a huge pos is past the end, as in the reference. */
    pos = PyNumber_AsSsize_t(argv[1], NULL);
    if (pos == -1 && PyErr_Occurred()) {
        goto fail;
    }
    if (pos < 0) {
        PyErr_Format(PyExc_ValueError, "pos must be >= 0, not %zd", pos);
        goto fail;
    }
    frames = PyList_New(0);
    if (frames == NULL) {
        goto fail;
    }
    flags.expect_masked = argv[2];
    flags.rsv1_ok = argv[3];
    flags.ne[0] = flags.ne[1] = flags.expect_true = flags.rsv1_true = -1;
    b = (const unsigned char *)view.buf;
    end = view.len;
    first = pos;

    /* Every "break" below is "stop here and report pos": an incomplete
       header or payload, or a bad header (then error is set). */
    while (end - pos >= 2) {
        unsigned head = b[pos];
        uint64_t length;
        Py_ssize_t p, n;
        const unsigned char *mask;
        PyObject *payload, *item;
        int r;

        if ((b[pos + 1] & 0x7F) == 127 && end - pos - 2 >= 8 && tmp != NULL) {
            /* The reference reads a 64-bit length with struct.unpack_from,
               which won't take a non-contiguous memoryview. */
            PyErr_SetString(PyExc_BufferError,
                            "memoryview: underlying buffer is not C-contiguous");
            goto fail;
        }
        if (read_header(b, pos, end, &length, &p, &mask) < 0) {
            break;
        }
        r = check_header(head, length, mask != NULL, &flags, &error);
        if (r < 0) {
            goto fail;
        }
        if (r > 0) {
            break;
        }
        if (length > (uint64_t)(end - p)) {
            break;
        }
        n = (Py_ssize_t)length;
        payload = PyBytes_FromStringAndSize(NULL, n);
        if (payload == NULL) {
            goto fail;
        }
        fill_payload((unsigned char *)PyBytes_AS_STRING(payload), b + p, n, mask, 0);
        item = PyTuple_New(2);
        if (item == NULL) {
            Py_DECREF(payload);
            goto fail;
        }
        PyTuple_SET_ITEM(item, 0, PyLong_FromLong((long)head)); /* cached small int */
        PyTuple_SET_ITEM(item, 1, payload);
        r = PyList_Append(frames, item);
        Py_DECREF(item);
        if (r < 0) {
            goto fail;
        }
        pos = p + n;
    }
    release_view(&view, tmp);

    /* Like the reference, an untouched pos is the caller's own object. */
    if (pos == first) {
        pos_out = Py_NewRef(argv[1]);
    }
    else if ((pos_out = PyLong_FromSsize_t(pos)) == NULL) {
        Py_DECREF(frames);
        Py_XDECREF(error);
        return NULL;
    }
    result = PyTuple_New(3);
    if (result == NULL) {
        Py_DECREF(frames);
        Py_DECREF(pos_out);
        Py_XDECREF(error);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, frames);
    PyTuple_SET_ITEM(result, 1, pos_out);
    PyTuple_SET_ITEM(result, 2, error != NULL ? error : Py_NewRef(Py_None));
    return result;

fail:
    release_view(&view, tmp);
    Py_XDECREF(frames);
    Py_XDECREF(error);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* parse_messages                                                           */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(parse_messages_doc,
"parse_messages(buf, pos, expect_masked, max_size)\n--\n\n"
"Parse the whole messages at ``buf[pos:]`` that need nothing but a frame each;\n"
"return ``(messages, pos)`` exactly like\n"
":func:`wsio.protocol.frames.parse_messages`.");

/* Text payloads up to this size are unmasked on the stack before decoding. */
#define TEXT_ON_STACK 512

/* Why: a read of small messages is the hot path of every ping-pong. The
   general path makes a (head, payload) tuple per frame, then a Python loop
   turns each into a message (a bytes object, then a str for text). Here each
   message is made at once from the read buffer: a binary payload unmasked
   straight into its bytes object, a text payload unmasked on the stack and
   decoded (validated) into its str, with no bytes object between. Anything
   else stops the loop and is left to the general path. */
static PyObject *
parse_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"buf", "pos", "expect_masked", "max_size"};
    PyObject *argv[4], *messages = NULL, *pos_out, *result;
    Py_buffer view;
    const unsigned char *b;
    Py_ssize_t end, pos;
    int expect, limited = 0;
    long long max_size = 0;
    unsigned char stack[TEXT_ON_STACK];

    (void)module;
    if (parse_args("parse_messages", args, nargs, kwnames, names, 4, 4, argv) < 0) {
        return NULL;
    }
    pos = PyNumber_AsSsize_t(argv[1], NULL);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0) {
        PyErr_Format(PyExc_ValueError, "pos must be >= 0, not %zd", pos);
        return NULL;
    }
    if ((expect = PyObject_IsTrue(argv[2])) < 0) {
        return NULL;
    }
    if (argv[3] != Py_None) {
        int overflow;
        max_size = PyLong_AsLongLongAndOverflow(argv[3], &overflow);
        if (max_size == -1 && PyErr_Occurred()) {
            return NULL;
        }
        /* Past what a long long holds: no frame is that big, or every one is. */
        if (overflow > 0) {
            limited = 0;
        }
        else {
            limited = 1;
            if (overflow < 0) {
                max_size = -1;
            }
        }
    }
    if (PyObject_GetBuffer(argv[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    messages = PyList_New(0);
    if (messages == NULL) {
        goto fail;
    }
    b = (const unsigned char *)view.buf;
    end = view.len;

    while (end - pos >= 2) {
        unsigned head = b[pos];
        uint64_t length;
        Py_ssize_t p, n;
        const unsigned char *mask;
        PyObject *message;
        int r;

        if ((head & 0xF0) != 0x80 || ((head & 0x0F) != 1 && (head & 0x0F) != 2) ||
            (int)(b[pos + 1] >> 7) != expect) {
            break;
        }
        if (read_header(b, pos, end, &length, &p, &mask) < 0) {
            break;
        }
        if (length > (uint64_t)(end - p)) {
            break;
        }
        if (limited && (max_size < 0 || length > (uint64_t)max_size)) {
            break;
        }
        n = (Py_ssize_t)length;
        if ((head & 0x0F) == 2) {
            message = PyBytes_FromStringAndSize(NULL, n);
            if (message == NULL) {
                goto fail;
            }
            fill_payload((unsigned char *)PyBytes_AS_STRING(message), b + p, n, mask, 0);
        }
        else {
            const char *text = (const char *)(b + p);
            unsigned char *heap = NULL;
            if (mask != NULL) {
                unsigned char *dst = stack;
                if (n > TEXT_ON_STACK) {
                    dst = heap = (unsigned char *)PyMem_Malloc((size_t)n);
                    if (heap == NULL) {
                        PyErr_NoMemory();
                        goto fail;
                    }
                }
                fill_payload(dst, b + p, n, mask, 0);
                text = (const char *)dst;
            }
            message = PyUnicode_DecodeUTF8(text, n, NULL);
            PyMem_Free(heap);
            if (message == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();  /* the general path fails the connection with 1007 */
                    break;
                }
                goto fail;
            }
        }
        r = PyList_Append(messages, message);
        Py_DECREF(message);
        if (r < 0) {
            goto fail;
        }
        pos = p + n;
    }
    PyBuffer_Release(&view);
    pos_out = PyLong_FromSsize_t(pos);
    if (pos_out == NULL) {
        Py_DECREF(messages);
        return NULL;
    }
    result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(messages);
        Py_DECREF(pos_out);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, messages);
    PyTuple_SET_ITEM(result, 1, pos_out);
    return result;

fail:
    PyBuffer_Release(&view);
    Py_XDECREF(messages);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* build_frame                                                              */
/* ------------------------------------------------------------------------ */

/* The head byte, or -1 with wsio's error, in the words of the reference's
   _head_byte(): not bytes()'s nor struct's, which differ from each other and
   change between Python versions. */
static int
head_byte(PyObject *obj)
{
    PyObject *index = PyNumber_Index(obj);
    long v;
    int overflow;

    if (index == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyObject *name;
            PyErr_Clear();
            name = PyObject_GetAttrString((PyObject *)Py_TYPE(obj), "__name__");
            if (name != NULL) {
                PyErr_Format(PyExc_TypeError, "frame head must be an integer, not %U", name);
                Py_DECREF(name);
            }
        }
        return -1;
    }
    v = PyLong_AsLongAndOverflow(index, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(index);
        return -1;
    }
    if (overflow || v < 0 || v > 255) {
        PyErr_Format(PyExc_ValueError, "frame head must be in range(0, 256), not %S", index);
        Py_DECREF(index);
        return -1;
    }
    Py_DECREF(index);
    return (int)v;
}

PyDoc_STRVAR(build_frame_doc,
"build_frame(head, payload, mask=None)\n--\n\n"
"Serialize one frame: ``head`` is FIN | RSV | opcode, ``mask`` 4 bytes for a\n"
"client. Return a new bytes object.");

/* Why: the reference concatenates header, mask and masked payload (three
   copies); here the payload is copied, or masked, once into the result. */
static PyObject *
build_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"head", "payload", "mask"};
    PyObject *argv[3], *tmp, *result = NULL;
    Py_buffer payload;
    unsigned char mask[4], *out;
    Py_ssize_t n, hlen;
    int head, masked;

    (void)module;
    if (parse_args("build_frame", args, nargs, kwnames, names, 2, 3, argv) < 0) {
        return NULL;
    }
    masked = argv[2] != NULL && argv[2] != Py_None;
    /* The reference concatenates an unmasked payload to the header, which
       takes a contiguous buffer only; a masked one goes through apply_mask,
       which takes any. */
    tmp = NULL;
    if ((masked ? get_view(argv[1], &payload, &tmp)
                : PyObject_GetBuffer(argv[1], &payload, PyBUF_SIMPLE)) < 0) {
        /* Raise what the reference raises first: len(), head, concatenation. */
        PyErr_Clear();
        n = PyObject_Size(argv[1]);
        if (n >= 0 && head_byte(argv[0]) >= 0) {
            PyErr_Format(PyExc_TypeError, "can't concat %.100s to bytes",
                         Py_TYPE(argv[1])->tp_name);
        }
        return NULL;
    }
    n = payload.len;
    head = head_byte(argv[0]);
    if (head < 0) {
        goto done;
    }
    if (masked && get_mask(argv[2], mask) < 0) {
        goto done;
    }
    hlen = (n < 126 ? 2 : n < 65536 ? 4 : 10) + (masked ? 4 : 0);
    if (n > PY_SSIZE_T_MAX - hlen) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, hlen + n);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    out[0] = (unsigned char)head;
    if (n < 126) {
        out[1] = (unsigned char)n;
        out += 2;
    }
    else if (n < 65536) {
        out[1] = 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        out += 4;
    }
    else {
        uint64_t len = (uint64_t)n;
        int i;
        out[1] = 127;
        for (i = 0; i < 8; i++) {
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        }
        out += 10;
    }
    if (masked) {
        PyBytes_AS_STRING(result)[1] |= (char)0x80;
        memcpy(out, mask, 4);
        out += 4;
        fill_payload(out, (const unsigned char *)payload.buf, n, mask, 0);
    }
    else {
        fill_payload(out, (const unsigned char *)payload.buf, n, NULL, 0);
    }
done:
    release_view(&payload, tmp);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Assembly                                                                 */
/* ------------------------------------------------------------------------ */

/* Why: a large frame arrives over many reads. Unmasking each piece into a
   bytes object of its own, then joining them, allocates the payload twice
   and copies it twice; here each piece is unmasked straight into the bytes
   object that becomes the message, which no one else sees until done(). */
typedef struct {
    PyObject_HEAD
    PyObject *data;   /* the bytes object being filled; NULL once handed out */
    Py_ssize_t filled;
} Assembly;

PyDoc_STRVAR(assembly_doc,
"Assembly(size)\n--\n\n"
"A payload of ``size`` bytes put together as its pieces arrive: ``feed()``\n"
"each piece (unmasked on the way when a mask is given), then ``done()``\n"
"returns the bytes.");

static PyObject *
assembly_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t size;
    Assembly *self;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Assembly() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "n:Assembly", &size)) {
        return NULL;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
        return NULL;
    }
    self = (Assembly *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->data = PyBytes_FromStringAndSize(NULL, size);
    if (self->data == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->filled = 0;
    return (PyObject *)self;
}

static void
assembly_dealloc(Assembly *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->data);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

PyDoc_STRVAR(assembly_feed_doc,
"feed(data, mask=None, offset=0)\n--\n\n"
"Append ``data``, XORed with ``mask`` from byte ``offset`` of the mask if one\n"
"is given. Raises ValueError past the announced size.");

static PyObject *
assembly_feed(Assembly *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"data", "mask", "offset"};
    PyObject *argv[3], *tmp;
    Py_buffer data;
    unsigned char mask[4];
    unsigned phase = 0;
    int masked = 0;
    PyObject *result = NULL;

    if (parse_args("feed", args, nargs, kwnames, names, 1, 3, argv) < 0) {
        return NULL;
    }
    if (self->data == NULL) {
        PyErr_SetString(PyExc_ValueError, "feed() after done()");
        return NULL;
    }
    if (argv[1] != NULL && argv[1] != Py_None) {
        if (get_mask(argv[1], mask) < 0) {
            return NULL;
        }
        masked = 1;
        if (argv[2] != NULL) {
            Py_ssize_t offset = PyLong_AsSsize_t(argv[2]);
            if (offset == -1 && PyErr_Occurred()) {
                return NULL;
            }
            phase = (unsigned)(offset & 3);
        }
    }
    if (get_view(argv[0], &data, &tmp) < 0) {
        return NULL;
    }
    if (data.len > PyBytes_GET_SIZE(self->data) - self->filled) {
        PyErr_SetString(PyExc_ValueError, "more bytes than the announced size");
        goto done;
    }
    fill_payload((unsigned char *)PyBytes_AS_STRING(self->data) + self->filled,
                 (const unsigned char *)data.buf, data.len, masked ? mask : NULL, phase);
    self->filled += data.len;
    result = Py_None;
    Py_INCREF(result);
done:
    release_view(&data, tmp);
    return result;
}

PyDoc_STRVAR(assembly_done_doc,
"done()\n--\n\n"
"Return the payload; ValueError if it isn't complete.");

static PyObject *
assembly_done(Assembly *self, PyObject *unused)
{
    PyObject *result = self->data;

    (void)unused;
    if (result == NULL || self->filled != PyBytes_GET_SIZE(result)) {
        PyErr_SetString(PyExc_ValueError, "payload incomplete");
        return NULL;
    }
    self->data = NULL;
    return result;
}

static PyMethodDef assembly_methods[] = {
    {"feed", (PyCFunction)(void (*)(void))(assembly_feed), METH_FASTCALL | METH_KEYWORDS, assembly_feed_doc},
    {"done", (PyCFunction)assembly_done, METH_NOARGS, assembly_done_doc},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot assembly_slots[] = {
    {Py_tp_new, assembly_new},
    {Py_tp_dealloc, assembly_dealloc},
    {Py_tp_methods, assembly_methods},
    {Py_tp_doc, (void *)assembly_doc},
    {0, NULL},
};

static PyType_Spec assembly_spec = {
    "wsio.protocol._speedups.Assembly",
    sizeof(Assembly),
    0,
    Py_TPFLAGS_DEFAULT,
    assembly_slots,
};

static int
speedups_exec(PyObject *module)
{
    /* A heap type per module object: nothing is shared between interpreters. */
    PyObject *type = PyType_FromSpec(&assembly_spec);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "Assembly", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Module                                                                   */
/* ------------------------------------------------------------------------ */

#define FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))

static PyMethodDef speedups_methods[] = {
    {"apply_mask", FASTCALL_KW(apply_mask), METH_FASTCALL | METH_KEYWORDS, apply_mask_doc},
    {"parse_frames", FASTCALL_KW(parse_frames), METH_FASTCALL | METH_KEYWORDS, parse_frames_doc},
    {"build_frame", FASTCALL_KW(build_frame), METH_FASTCALL | METH_KEYWORDS, build_frame_doc},
    {"parse_messages", FASTCALL_KW(parse_messages), METH_FASTCALL | METH_KEYWORDS, parse_messages_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"C versions of the hot functions of :mod:`wsio.protocol.frames`.\n\n"
"``apply_mask``, ``parse_frames``, ``parse_messages``, ``build_frame`` and ``Assembly``\n"
"have exactly the contract\n"
"of the pure-Python reference there, which imports them when this module is\n"
"built (``WSIO_NO_SPEEDUPS=1`` keeps the Python versions). Masking is done\n"
"16 bytes at a time (SSE2; 8 with plain C elsewhere), each payload is\n"
"written once into the bytes object returned, and payloads of 64 KiB or more\n"
"are processed without the GIL.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "wsio.protocol._speedups",
    speedups_doc,
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
