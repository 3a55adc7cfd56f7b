/*
 * wsio.protocol._speedups: C versions of the hot functions of
 * wsio.protocol.frames (apply_mask, parse_frames, parse_messages, build_frame),
 * and ReadLane: the asyncio read path and small-message send of both APIs,
 * which hand whole messages from the read buffer to the application and
 * frame the answers (see its section below).
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
#include <structmember.h>  /* T_OBJECT_EX, READONLY: reading __slots__ members (ReadLane) */

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

/* The whole message at b[*pos:end] if it needs nothing but one frame (FIN,
   no RSV bit, text or binary, masked as expected, complete, within max_size,
   valid UTF-8 for text): 1 with *message set and *pos past it; 0 for anything
   else (the general path takes it from *pos); -1 with an exception set.
   `limited` says whether max_size applies; a negative max_size allows no
   payload at all. */
static inline int
next_message(const unsigned char *b, Py_ssize_t *pos_io, Py_ssize_t end, int expect,
             int limited, long long max_size, PyObject **message_out)
{
    Py_ssize_t pos = *pos_io, p, n;
    unsigned head;
    uint64_t length;
    const unsigned char *mask;
    PyObject *message;
    unsigned char stack[TEXT_ON_STACK];

    if (end - pos < 2) {
        return 0;
    }
    head = b[pos];
    if ((head & 0xF0) != 0x80 || ((head & 0x0F) != 1 && (head & 0x0F) != 2) ||
        (int)(b[pos + 1] >> 7) != expect) {
        return 0;
    }
    if (read_header(b, pos, end, &length, &p, &mask) < 0) {
        return 0;
    }
    if (length > (uint64_t)(end - p)) {
        return 0;
    }
    if (limited && (max_size < 0 || length > (uint64_t)max_size)) {
        return 0;
    }
    n = (Py_ssize_t)length;
    if ((head & 0x0F) == 2) {
        message = PyBytes_FromStringAndSize(NULL, n);
        if (message == NULL) {
            return -1;
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
                    return -1;
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
                return 0;
            }
            return -1;
        }
    }
    *message_out = message;
    *pos_io = p + n;
    return 1;
}

/* max_size as next_message() takes it: 0 (no limit) or 1 with *max_size set;
   -1 with an exception set. */
static int
get_max_size(PyObject *obj, long long *max_size)
{
    int overflow;

    if (obj == Py_None) {
        return 0;
    }
    *max_size = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (*max_size == -1 && PyErr_Occurred()) {
        return -1;
    }
    /* Past what a long long holds: no frame is that big, or every one is. */
    if (overflow > 0) {
        return 0;
    }
    if (overflow < 0) {
        *max_size = -1;
    }
    return 1;
}

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
    PyObject *argv[4], *messages = NULL, *message, *pos_out, *result;
    Py_buffer view;
    Py_ssize_t pos;
    int expect, limited, r;
    long long max_size = 0;

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
    if ((limited = get_max_size(argv[3], &max_size)) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(argv[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    messages = PyList_New(0);
    if (messages == NULL) {
        goto fail;
    }
    while ((r = next_message((const unsigned char *)view.buf, &pos, view.len, expect,
                             limited, max_size, &message)) > 0) {
        r = PyList_Append(messages, message);
        Py_DECREF(message);
        if (r < 0) {
            goto fail;
        }
    }
    if (r < 0) {
        goto fail;
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

/* A frame: head byte, length, mask key if any, then the payload (masked
   with `mask` unless it is NULL), in one new bytes object. */
static PyObject *
make_frame(int head, const unsigned char *data, Py_ssize_t n, const unsigned char *mask)
{
    PyObject *result;
    unsigned char *out;
    Py_ssize_t hlen = (n < 126 ? 2 : n < 65536 ? 4 : 10) + (mask != NULL ? 4 : 0);

    if (n > PY_SSIZE_T_MAX - hlen) {
        return PyErr_NoMemory();
    }
    result = PyBytes_FromStringAndSize(NULL, hlen + n);
    if (result == NULL) {
        return NULL;
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
    if (mask != NULL) {
        PyBytes_AS_STRING(result)[1] |= (char)0x80;
        memcpy(out, mask, 4);
        out += 4;
    }
    fill_payload(out, data, n, mask, 0);
    return result;
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
    unsigned char mask[4];
    Py_ssize_t n;
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
    result = make_frame(head, (const unsigned char *)payload.buf, n, masked ? mask : NULL);
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

/* ------------------------------------------------------------------------ */
/* MaskSource                                                               */
/* ------------------------------------------------------------------------ */

/* Why: frames.MaskSource in C, so that the lane's send of a client's small
   frame takes its key without a Python call (see frame_small()). Keys come
   from os.urandom(), 4 KiB at a time, as in the Python class. */
typedef struct {
    PyObject_HEAD
    PyObject *urandom;  /* os.urandom */
    PyObject *pool;     /* the last 4 KiB fetched; NULL before the first */
    Py_ssize_t pos;     /* its next unused byte */
} MaskSource;

#define MASK_POOL 4096

PyDoc_STRVAR(mask_source_doc,
"MaskSource()\n--\n\n"
"Masking keys from the OS's strong random source, fetched 4 KiB at a time:\n"
"each call returns 4 bytes.");

static PyObject *
mask_source_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    MaskSource *self;
    PyObject *os;

    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "MaskSource() takes no arguments");
        return NULL;
    }
    if ((os = PyImport_ImportModule("os")) == NULL) {
        return NULL;
    }
    self = (MaskSource *)type->tp_alloc(type, 0);
    if (self != NULL && (self->urandom = PyObject_GetAttrString(os, "urandom")) == NULL) {
        Py_CLEAR(self);
    }
    Py_DECREF(os);
    return (PyObject *)self;
}

static void
mask_source_dealloc(MaskSource *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->urandom);
    Py_XDECREF(self->pool);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

/* The next key into out; 0, or -1 with an exception set. */
static int
mask_source_next(MaskSource *self, unsigned char out[4])
{
    if (self->pool == NULL || self->pos + 4 > PyBytes_GET_SIZE(self->pool)) {
        PyObject *size = PyLong_FromLong(MASK_POOL), *pool;
        if (size == NULL) {
            return -1;
        }
        pool = PyObject_CallOneArg(self->urandom, size);
        Py_DECREF(size);
        if (pool == NULL) {
            return -1;
        }
        if (!PyBytes_Check(pool) || PyBytes_GET_SIZE(pool) < 4) {
            Py_DECREF(pool);
            PyErr_SetString(PyExc_RuntimeError, "os.urandom() returned no bytes");
            return -1;
        }
        Py_XSETREF(self->pool, pool);
        self->pos = 0;
    }
    memcpy(out, PyBytes_AS_STRING(self->pool) + self->pos, 4);
    self->pos += 4;
    return 0;
}

static PyObject *
mask_source_call(MaskSource *self, PyObject *args, PyObject *kwargs)
{
    unsigned char key[4];

    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a MaskSource takes no arguments");
        return NULL;
    }
    if (mask_source_next(self, key) < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)key, 4);
}

static PyType_Slot mask_source_slots[] = {
    {Py_tp_new, mask_source_new},
    {Py_tp_dealloc, mask_source_dealloc},
    {Py_tp_call, mask_source_call},
    {Py_tp_doc, (void *)mask_source_doc},
    {0, NULL},
};

static PyType_Spec mask_source_spec = {
    "wsio.protocol._speedups.MaskSource",
    sizeof(MaskSource),
    0,
    Py_TPFLAGS_DEFAULT,
    mask_source_slots,
};

/* ------------------------------------------------------------------------ */
/* ReadLane: the asyncio read path, in C                                    */
/* ------------------------------------------------------------------------ */

/* What the lane needs from the Python side, set once by configure_lane(),
   and the attribute names it reads, interned once. Per module object, so
   nothing is shared between interpreters. */
/* The attributes of a connection (and of its core) the lane reads or sets:
   F_<NAME> indexes them, the text is the attribute's name. */
#define FIELDS(X) \
    X(PROTOCOL, "protocol") \
    X(STATE, "state") \
    X(INLINE_READS, "_inline_reads") \
    X(BUF, "_buf") \
    X(MSG_TEXT, "_msg_text") \
    X(PF_LEFT, "_pf_left") \
    X(DEFERRED_FAILURE, "_deferred_failure") \
    X(DEBUG, "debug") \
    X(EXPECT_MASKED, "_expect_masked") \
    X(MAX_SIZE, "max_size") \
    X(FAILURE_PENDING, "failure_pending") \
    X(LISTENER, "listener") \
    X(DEFLATE, "deflate") \
    X(FRAGMENTING, "_fragmenting") \
    X(MASK, "_mask") \
    X(HELD, "_held") \
    X(QUEUE, "_queue") \
    X(MESSAGES, "_messages") \
    X(MAX_QUEUE, "max_queue") \
    X(RECV_WAITER, "_recv_waiter") \
    X(LOOP, "loop") \
    X(BACKLOG, "_backlog") \
    X(HELD_SIZE, "_held_size") \
    X(TRANSPORT, "transport") \
    X(WRITE_LIMIT, "write_limit")

#define FIELD_ENUM(name, text) F_##name,
enum { FIELDS(FIELD_ENUM) N_FIELDS };
#undef FIELD_ENUM

/* Where a class keeps those attributes: their offsets in its instances when
   they are plain __slots__ members (-1 when not: read with getattr). */
#define LAYOUTS 16
typedef struct {
    PyTypeObject *type;
    Py_ssize_t offset[N_FIELDS];
    /* The coroutine API's own _handle_events() and _hold(), not a subclass's:
       then the lane may do what they do itself (see hand_off(), hold()). */
    int own_handle_events, own_hold;
    /* The callback API's own _flush_held(): uncork() does what it does itself. */
    int own_flush_held;
} layout;

typedef struct {
    PyObject *read_buffer;  /* wsio.asyncio.connection._read_buffer (thread-local .view) */
    PyObject *cork;         /* wsio.asyncio.connection._cork (thread-local .connections) */
    PyObject *open_state;   /* State.OPEN */
    PyObject *closed_state; /* State.CLOSED */
    /* Names of the methods it calls and of the thread-locals' attributes. */
    PyObject *s_view, *s_connections, *s_on_message, *s_read, *s_read_tail,
        *s_listener_failed, *s_flush_held, *s_after_read, *s_send,
        *s_handle_events, *s_hold, *s_extend, *s_done, *s_set_result, *s_callbacks,
        *s_remove_done_callback, *s_run, *s_self, *s_write,
        *s_host, *s_upgrade, *s_connection, *s_ws_key, *s_ws_version,
        *s_is_closing, *s_closing, *s_join, *s_append;
    /* From configure_handoff(): Connection._handle_events, BaseConnection._hold,
       asyncio.current_task, asyncio.Task, collections.deque (NULL before). */
    PyObject *handle_events_fn, *hold_fn, *current_task, *task_type, *deque_type;
    /* From configure_flush(): ListenerConnection._flush_held and asyncio's
       _SelectorTransport.is_closing, which returns _closing (NULL before). */
    PyObject *flush_held_fn, *is_closing_fn;
    PyObject *empty_bytes;  /* b"": what joins held frames */
    PyObject *mask_source_type;  /* MaskSource: frame_small() takes its keys directly */
    Py_ssize_t large_payload; /* frames.LARGE_PAYLOAD: sent in pieces, by the Python path */
    PyObject *field_names[N_FIELDS];  /* FIELDS' texts, interned */
    layout layouts[LAYOUTS];
    int nlayouts;
} speedups_state;

#ifndef T_OBJECT_EX
#define T_OBJECT_EX 16  /* structmember.h: a __slots__ member */
#endif

/* The layout of `type`, found and kept on first use; NULL (no error) when
   the cache is full: then every attribute is read with getattr. */
static layout *
layout_of(speedups_state *st, PyTypeObject *type)
{
    layout *l;
    int i;

    for (i = 0; i < st->nlayouts; i++) {
        if (st->layouts[i].type == type) {
            return &st->layouts[i];
        }
    }
    if (st->nlayouts == LAYOUTS) {
        return NULL;
    }
    l = &st->layouts[st->nlayouts++];
    l->type = (PyTypeObject *)Py_NewRef(type);
    l->own_handle_events = st->handle_events_fn != NULL &&
        _PyType_Lookup(type, st->s_handle_events) == st->handle_events_fn;
    l->own_hold = st->hold_fn != NULL && _PyType_Lookup(type, st->s_hold) == st->hold_fn;
    l->own_flush_held = st->flush_held_fn != NULL &&
        _PyType_Lookup(type, st->s_flush_held) == st->flush_held_fn;
    for (i = 0; i < N_FIELDS; i++) {
        /* The attribute as the class resolves it: a slot's member descriptor
           (a data descriptor: nothing in an instance dict can hide it), or
           anything else (a property, a class attribute...), read with getattr. */
        PyObject *d = _PyType_Lookup(type, st->field_names[i]);
        l->offset[i] = -1;
        if (d != NULL && Py_IS_TYPE(d, &PyMemberDescr_Type)) {
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            if (m->type == T_OBJECT_EX && !(m->flags & READONLY)) {
                l->offset[i] = m->offset;
            }
        }
    }
    return l;
}

/* obj.<field>, a new reference: straight from its slot when it has one. */
static PyObject *
get_field(speedups_state *st, PyObject *obj, int field)
{
    layout *l = layout_of(st, Py_TYPE(obj));
    if (l != NULL && l->offset[field] >= 0) {
        PyObject *v = *(PyObject **)((char *)obj + l->offset[field]);
        if (v != NULL) {
            return Py_NewRef(v);
        }
    }
    return PyObject_GetAttr(obj, st->field_names[field]);
}

/* 1 if obj.<field> is `value`, 0 if not, -1 on error. */
static int
field_is(speedups_state *st, PyObject *obj, int field, PyObject *value)
{
    PyObject *v = get_field(st, obj, field);
    if (v == NULL) {
        return -1;
    }
    Py_DECREF(v);
    return v == value;
}

/* The truth of obj.<field>: 1, 0, or -1 on error. */
static int
field_true(speedups_state *st, PyObject *obj, int field)
{
    int r;
    PyObject *v = get_field(st, obj, field);
    if (v == NULL) {
        return -1;
    }
    r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* obj.<field> = value */
static int
set_field(speedups_state *st, PyObject *obj, int field, PyObject *value)
{
    layout *l = layout_of(st, Py_TYPE(obj));
    if (l != NULL && l->offset[field] >= 0) {
        Py_XSETREF(*(PyObject **)((char *)obj + l->offset[field]), Py_NewRef(value));
        return 0;
    }
    return PyObject_SetAttr(obj, st->field_names[field], value);
}

static speedups_state *
state_of(PyTypeObject *defining_class)
{
    speedups_state *st = (speedups_state *)PyType_GetModuleState(defining_class);
    if (st != NULL && st->read_buffer == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ReadLane used before configure_lane()");
        return NULL;
    }
    return st;
}

PyDoc_STRVAR(lane_get_buffer_doc,
"get_buffer($self, sizehint, /)\n--\n\n"
"The buffer this thread's connections read into (asyncio.BufferedProtocol).");

static PyObject *
lane_get_buffer(PyObject *self, PyTypeObject *defining_class, PyObject *const *args,
                Py_ssize_t nargs, PyObject *kwnames)
{
    speedups_state *st = state_of(defining_class);
    (void)self;
    (void)args;
    (void)nargs;
    (void)kwnames;
    if (st == NULL) {
        return NULL;
    }
    return PyObject_GetAttr(st->read_buffer, st->s_view);
}

/* Whether the core is at rest between messages: nothing buffered, no message
   or frame in progress, no failure held back, no frame logging. 1, 0, or -1
   with an exception set. The same conditions as Protocol.receive_data()'s
   own fast path, checked on the core's slots. */
static int
core_at_rest(speedups_state *st, PyObject *protocol)
{
    int r;

    if ((r = field_true(st, protocol, F_BUF)) != 0 ||
        (r = field_is(st, protocol, F_MSG_TEXT, Py_None)) != 1 ||
        (r = field_is(st, protocol, F_DEFERRED_FAILURE, Py_None)) != 1 ||
        (r = field_true(st, protocol, F_PF_LEFT)) != 0) {
        return r < 0 ? -1 : 0;
    }
    r = field_true(st, protocol, F_DEBUG);
    return r < 0 ? -1 : !r;
}

/* self.<name>(args...). argv[0] is spare: PY_VECTORCALL_ARGUMENTS_OFFSET lets
   the callee use the slot before the arguments (a bound method puts its self
   there instead of building a new array). */
static PyObject *
call_method(PyObject *self, PyObject *name, PyObject *a, PyObject *b, PyObject *c)
{
    PyObject *argv[5] = {NULL, self, a, b, c};
    size_t n = a == NULL ? 1 : b == NULL ? 2 : c == NULL ? 3 : 4;
    return PyObject_VectorcallMethod(name, argv + 1, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* transport.is_closing(): 1, 0, or -1 with an exception set. asyncio's own
   transports' method returns their _closing, read here without its frame. */
static int
transport_closing(speedups_state *st, PyObject *transport)
{
    PyObject *v;
    int closing;

    if (st->is_closing_fn != NULL && _PyType_Lookup(Py_TYPE(transport), st->s_is_closing) == st->is_closing_fn) {
        v = PyObject_GetAttr(transport, st->s_closing);
    }
    else {
        v = call_method(transport, st->s_is_closing, NULL, NULL, NULL);
    }
    if (v == NULL) {
        return -1;
    }
    closing = PyObject_IsTrue(v);
    Py_DECREF(v);
    return closing;
}

/* BaseConnection._transport_write(data) in C: behind a large payload still
   waiting (_backlog), or to the transport. 0, or -1 with an exception set. */
static int
write_or_queue(speedups_state *st, PyObject *self, PyObject *transport, PyObject *data)
{
    PyObject *backlog, *r;
    int queued = 0;

    if ((backlog = get_field(st, self, F_BACKLOG)) == NULL) {
        return -1;
    }
    if (backlog != Py_None && (queued = PyObject_IsTrue(backlog)) < 0) {
        Py_DECREF(backlog);
        return -1;
    }
    r = queued ? call_method(backlog, st->s_append, data, NULL, NULL) : call_method(transport, st->s_write, data, NULL, NULL);
    Py_DECREF(backlog);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* ListenerConnection._flush_held() in C, step for step: what a read's
   callbacks sent to this connection, joined, to the transport (or behind a
   large payload still waiting), unless the transport is closing. Why: it
   runs once per connection per read, two Python frames (it and asyncio's
   is_closing()) around one write. 0, or -1 with an exception set. */
static int
flush_held(speedups_state *st, PyObject *self)
{
    PyObject *batch, *transport = NULL, *data = NULL;
    int result = -1, closing;

    if ((batch = get_field(st, self, F_HELD)) == NULL) {
        return -1;
    }
    if (set_field(st, self, F_HELD, Py_None) < 0) {
        goto done;
    }
    if (batch == Py_None || (PyList_CheckExact(batch) && PyList_GET_SIZE(batch) == 0)) {
        result = 0;
        goto done;
    }
    if (!PyList_CheckExact(batch)) {  /* only the class's own code sets it, to None or a list */
        PyErr_SetString(PyExc_TypeError, "_held must be a list or None");
        goto done;
    }
    if ((transport = get_field(st, self, F_TRANSPORT)) == NULL || (closing = transport_closing(st, transport)) < 0) {
        goto done;
    }
    if (closing) {
        result = 0;
        goto done;
    }
    if (PyList_GET_SIZE(batch) == 1) {
        data = Py_NewRef(PyList_GET_ITEM(batch, 0));
    }
    else if ((data = PyObject_VectorcallMethod(st->s_join, (PyObject *[]){st->empty_bytes, batch},
                                               2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)) == NULL) {
        goto done;
    }
    result = write_or_queue(st, self, transport, data);
done:
    Py_DECREF(batch);
    Py_XDECREF(transport);
    Py_XDECREF(data);
    return result;
}

/* Write what the callbacks sent while the read was handled: each corked
   connection's _flush_held(), in the order they were corked. */
static int
uncork(speedups_state *st, PyObject *corked)
{
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    Py_ssize_t i;

    if (PyObject_SetAttr(st->cork, st->s_connections, Py_None) < 0) {
        return -1;
    }
    /* As the Python path's finally: every connection is flushed; the first
       error is raised, any other is reported as unraisable. */
    for (i = 0; i < PyList_GET_SIZE(corked); i++) {
        PyObject *item = PyList_GET_ITEM(corked, i);
        layout *l = layout_of(st, Py_TYPE(item));
        int ok;
        if (l != NULL && l->own_flush_held) {
            ok = flush_held(st, item);
        }
        else {
            PyObject *r = call_method(item, st->s_flush_held, NULL, NULL, NULL);
            ok = r == NULL ? -1 : 0;
            Py_XDECREF(r);
        }
        if (ok < 0) {
            if (type == NULL && value == NULL) {
                PyErr_Fetch(&type, &value, &tb);
            }
            else {
                PyErr_WriteUnraisable(item);
            }
        }
    }
    if (type != NULL || value != NULL) {
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return 0;
}

/* _resume_now() of wsio/asyncio/connection.py, in C: set the waiter's result
   and, when one task waits on it and none is running, resume that task here
   rather than on the next turn of the event loop; otherwise set_result() alone.
   0, or -1 with an exception set. */
static int
resume_now(speedups_state *st, PyObject *self, PyObject *waiter)
{
    PyObject *callbacks, *resume = NULL, *context = NULL, *loop = NULL, *task = NULL, *owner = NULL, *r;
    int now = 0, result = -1;

    if ((callbacks = PyObject_GetAttr(waiter, st->s_callbacks)) == NULL) {
        /* A future that isn't asyncio's: set_result() below. */
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
    }
    else if (PyList_CheckExact(callbacks) && PyList_GET_SIZE(callbacks) == 1) {
        PyObject *item = PyList_GET_ITEM(callbacks, 0);
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
            /* Owned: the Python Future's _callbacks is its own list, which
               remove_done_callback() empties. */
            resume = Py_NewRef(PyTuple_GET_ITEM(item, 0));
            context = Py_NewRef(PyTuple_GET_ITEM(item, 1));
            if ((loop = get_field(st, self, F_LOOP)) == NULL ||
                (task = PyObject_CallOneArg(st->current_task, loop)) == NULL) {
                goto done;
            }
            if (task == Py_None) {
                if ((owner = PyObject_GetAttr(resume, st->s_self)) == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                        goto done;
                    }
                    PyErr_Clear();
                }
                else {
                    now = PyObject_IsInstance(owner, st->task_type);
                    if (now < 0) {
                        goto done;
                    }
                }
            }
        }
    }
    if (now) {
        if ((r = call_method(waiter, st->s_remove_done_callback, resume, NULL, NULL)) == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    if ((r = call_method(waiter, st->s_set_result, Py_None, NULL, NULL)) == NULL) {
        goto done;
    }
    Py_DECREF(r);
    if (now) {
        if ((r = call_method(context, st->s_run, resume, waiter, NULL)) == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    result = 0;
done:
    Py_XDECREF(callbacks);
    Py_XDECREF(resume);
    Py_XDECREF(context);
    Py_XDECREF(loop);
    Py_XDECREF(task);
    Py_XDECREF(owner);
    return result;
}

/* Connection._handle_events() for a read of whole messages (str and bytes),
   in C, when the connection is the coroutine API's own class and the queue
   stays under max_queue (at it, reading pauses: the Python method does
   that). 1 when done, 0 when _handle_events() must do it (nothing done
   yet), -1 with an exception set. The same steps, in the same order: queue
   the messages, count them, end a burst with nothing held, wake the reader.
   Called only for a read the lane took whole, which it takes only while the
   core is open and at rest: the connection is open with no failure pending,
   so the reader is always resumed in this read (resume_now() decides the
   rest, as _resume_now() does). */
static int
hand_off(speedups_state *st, PyObject *self, PyObject *messages)
{
    layout *l = layout_of(st, Py_TYPE(self));
    PyObject *queue = NULL, *count = NULL, *v = NULL, *waiter = NULL, *r;
    Py_ssize_t n = PyList_GET_SIZE(messages), queued;
    int result = 0, ok;

    if (l == NULL || !l->own_handle_events) {
        return 0;
    }
    if ((queue = get_field(st, self, F_QUEUE)) == NULL) {
        return -1;
    }
    if (!Py_IS_TYPE(queue, (PyTypeObject *)st->deque_type)) {
        goto done;  /* no queue yet: the first messages */
    }
    if ((count = get_field(st, self, F_MESSAGES)) == NULL) {
        goto error;
    }
    if (!PyLong_CheckExact(count)) {
        goto done;
    }
    queued = PyLong_AsSsize_t(count);
    if (queued == -1 && PyErr_Occurred()) {
        goto error;
    }
    if ((v = get_field(st, self, F_MAX_QUEUE)) == NULL) {
        goto error;
    }
    if (v != Py_None) {
        Py_ssize_t max_queue;
        if (!PyLong_CheckExact(v)) {
            goto done;
        }
        max_queue = PyLong_AsSsize_t(v);
        if (max_queue == -1 && PyErr_Occurred()) {
            goto error;
        }
        if (queued + n >= max_queue) {
            goto done;
        }
    }
    Py_CLEAR(v);
    result = 1;
    if ((r = call_method(queue, st->s_extend, messages, NULL, NULL)) == NULL) {
        goto error;
    }
    Py_DECREF(r);
    if ((v = PyLong_FromSsize_t(queued + n)) == NULL || set_field(st, self, F_MESSAGES, v) < 0) {
        goto error;
    }
    Py_CLEAR(v);
    if ((v = get_field(st, self, F_HELD)) == NULL) {
        goto error;
    }
    if (PyList_CheckExact(v) && PyList_GET_SIZE(v) == 0 && set_field(st, self, F_HELD, Py_None) < 0) {
        goto error;  /* nothing held: what answers these messages starts a burst */
    }
    Py_CLEAR(v);
    if ((waiter = get_field(st, self, F_RECV_WAITER)) == NULL) {
        goto error;
    }
    if (waiter != Py_None) {
        if ((v = call_method(waiter, st->s_done, NULL, NULL, NULL)) == NULL) {
            goto error;
        }
        ok = PyObject_IsTrue(v);
        Py_CLEAR(v);
        if (ok < 0) {
            goto error;
        }
        if (!ok && resume_now(st, self, waiter) < 0) {
            goto error;
        }
    }
done:
    Py_XDECREF(queue);
    Py_XDECREF(count);
    Py_XDECREF(v);
    Py_XDECREF(waiter);
    return result;

error:
    result = -1;
    goto done;
}

PyDoc_STRVAR(lane_buffer_updated_doc,
"buffer_updated($self, nbytes, /)\n--\n\n"
"Handle a read (asyncio.BufferedProtocol): what the connection's ``_read()``\n"
"does, in C. Whole messages of one frame each go from the read buffer\n"
"straight to ``listener.on_message`` (the callback API) or, as one list, to\n"
"``_handle_events()`` (the coroutine API; with the rest of the read, when\n"
"there is one, through ``_read_tail()``); the rest of the read goes to the\n"
"core through ``_read_tail()``, and every read while the core isn't at rest\n"
"between messages takes the Python path, ``_read()``.");

/* Why: an echo of small messages spends most of its time in the Python
   frames of each read (buffer_updated, receive_data, the event loop over a
   list made for it) rather than in the work. Here a read of whole messages
   costs, for the callback API, the listener's frames only (what they sent
   is written by flush_held(), in C); for the coroutine API, one
   _handle_events() per read. The
   decisions stay the core's: the lane only takes what parse_messages()
   would, while the core is at rest, and hands the first frame of anything
   else, with the rest of the read, to the core through _read_tail(). */
static PyObject *
lane_buffer_updated(PyObject *self, PyTypeObject *defining_class, PyObject *const *args,
                    Py_ssize_t nargs, PyObject *kwnames)
{
    speedups_state *st;
    PyObject *protocol = NULL, *v = NULL, *view_obj = NULL, *listener = NULL,
             *corked = NULL, *exc = NULL, *messages = NULL, *message, *r;
    Py_buffer view;
    Py_ssize_t nbytes, pos = 0;
    int ok, expect, limited, got, have_view = 0, listening;
    long long max_size = 0;
    layout *layout_;

    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "buffer_updated() takes exactly one argument (nbytes)");
        return NULL;
    }
    if ((st = state_of(defining_class)) == NULL) {
        return NULL;
    }
    nbytes = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (nbytes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((protocol = get_field(st, self, F_PROTOCOL)) == NULL) {
        return NULL;
    }
    /* The Python path unless: open, no read being handled (reads don't nest),
       reads inline (a subclass overriding data_received() gets every read).
       A class with a listener slot is the callback API's; others are the
       coroutine API's, whose messages go to _handle_events() as a list. */
    layout_ = layout_of(st, Py_TYPE(self));
    listening = layout_ != NULL && layout_->offset[F_LISTENER] >= 0;
    ok = layout_ != NULL ? field_is(st, protocol, F_STATE, st->open_state) : 0;
    if (ok > 0 && listening) {
        if ((v = PyObject_GetAttr(st->cork, st->s_connections)) == NULL) {
            goto error;
        }
        ok = v == Py_None;
        Py_CLEAR(v);
    }
    if (ok > 0) {
        ok = field_is(st, self, F_INLINE_READS, Py_True);
    }
    if (ok > 0) {
        ok = core_at_rest(st, protocol);
    }
    if (ok < 0) {
        goto error;
    }
    if (!ok) {
        Py_DECREF(protocol);
        return call_method(self, st->s_read, args[0], NULL, NULL);
    }
    if ((expect = field_true(st, protocol, F_EXPECT_MASKED)) < 0) {
        goto error;
    }
    if ((v = get_field(st, protocol, F_MAX_SIZE)) == NULL) {
        goto error;
    }
    limited = get_max_size(v, &max_size);
    Py_CLEAR(v);
    if (limited < 0) {
        goto error;
    }
    if ((view_obj = PyObject_GetAttr(st->read_buffer, st->s_view)) == NULL) {
        goto error;
    }
    if (PyObject_GetBuffer(view_obj, &view, PyBUF_SIMPLE) < 0) {
        goto error;
    }
    have_view = 1;
    if (nbytes < 0 || nbytes > view.len) {
        PyErr_Format(PyExc_ValueError, "nbytes must be in 0..%zd, not %zd", view.len, nbytes);
        goto error;
    }
    if (!listening) {
        /* The coroutine API: the messages, in one list, to _handle_events();
           with the rest of the read, through _read_tail(), so that the API
           gets one list per read once the core has read all of it (as on
           the Python path: a reader woken by these messages sees the core
           after the whole read). */
        if ((messages = PyList_New(0)) == NULL) {
            goto error;
        }
        ok = 0;
        while ((got = next_message((const unsigned char *)view.buf, &pos, nbytes, expect,
                                   limited, max_size, &message)) > 0) {
            ok = PyList_Append(messages, message);
            Py_DECREF(message);
            if (ok < 0) {
                break;
            }
        }
        PyBuffer_Release(&view);
        have_view = 0;
        if (got < 0 || ok < 0) {
            goto error;
        }
        if (pos == nbytes && PyList_GET_SIZE(messages)) {
            if ((ok = hand_off(st, self, messages)) < 0) {
                goto error;
            }
            if (!ok) {
                if ((r = call_method(self, st->s_handle_events, messages, NULL, NULL)) == NULL) {
                    goto error;
                }
                Py_DECREF(r);
            }
        }
        goto rest;  /* with a rest of the read, the messages go with it to _read_tail() */
    }
    if ((listener = get_field(st, self, F_LISTENER)) == NULL) {
        goto error;
    }
    /* Cork: what the callbacks send to any listener connection is held and
       written once per connection when the read is handled. */
    if ((corked = PyList_New(0)) == NULL) {
        goto error;
    }
    if (PyObject_SetAttr(st->cork, st->s_connections, corked) < 0) {
        Py_CLEAR(corked);
        goto error;
    }
    while ((got = next_message((const unsigned char *)view.buf, &pos, nbytes, expect,
                               limited, max_size, &message)) > 0) {
        r = call_method(listener, st->s_on_message, self, message, NULL);
        Py_DECREF(message);
        if (r == NULL) {
            PyObject *type, *tb;
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                goto error;  /* KeyboardInterrupt, SystemExit: raised, as on the Python path */
            }
            PyErr_Fetch(&type, &exc, &tb);
            PyErr_NormalizeException(&type, &exc, &tb);
            if (tb != NULL && exc != NULL) {
                PyException_SetTraceback(exc, tb);
            }
            Py_XDECREF(type);
            Py_XDECREF(tb);
            if (exc == NULL) {
                goto error;
            }
            break;
        }
        Py_DECREF(r);
    }
    if (got < 0) {
        goto error;
    }
    PyBuffer_Release(&view);
    have_view = 0;
rest:
    if (exc != NULL || pos < nbytes) {
        /* The rest of the read goes to the core: after a listener's exception
           (_listener_failed(): nothing more reaches the listener, then 1011),
           or from the first frame the lane doesn't take (_read_tail(), with
           the coroutine API's messages taken before it). */
        PyObject *start = PyLong_FromSsize_t(pos), *end = PyLong_FromSsize_t(nbytes);
        if (start == NULL || end == NULL) {
            Py_XDECREF(start);
            Py_XDECREF(end);
            goto error;
        }
        if (exc != NULL) {
            r = call_method(self, st->s_listener_failed, exc, start, end);
        }
        else {
            r = call_method(self, st->s_read_tail, start, end, messages);
        }
        Py_DECREF(start);
        Py_DECREF(end);
        if (r == NULL) {
            goto error;
        }
        Py_DECREF(r);
    }
    else {
        /* A callback may have closed or failed the connection: act on it,
           as _read() does after every read. */
        ok = field_is(st, protocol, F_STATE, st->closed_state);
        if (ok == 0) {
            ok = field_true(st, protocol, F_FAILURE_PENDING);
        }
        if (ok < 0) {
            goto error;
        }
        if (ok) {
            if ((r = call_method(self, st->s_after_read, NULL, NULL, NULL)) == NULL) {
                goto error;
            }
            Py_DECREF(r);
        }
    }
    Py_XDECREF(listener);
    Py_XDECREF(messages);
    Py_DECREF(view_obj);
    Py_DECREF(protocol);
    Py_XDECREF(exc);
    if (corked != NULL) {
        ok = uncork(st, corked);
        Py_DECREF(corked);
        if (ok < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;

error:
    if (have_view) {
        PyBuffer_Release(&view);
    }
    if (corked != NULL) {
        /* Keep the error of the read; flushing still happens. */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (uncork(st, corked) < 0) {
            PyErr_WriteUnraisable(self);
        }
        PyErr_Restore(type, value, tb);
        Py_DECREF(corked);
    }
    Py_XDECREF(listener);
    Py_XDECREF(messages);
    Py_XDECREF(view_obj);
    Py_XDECREF(v);
    Py_XDECREF(exc);
    Py_XDECREF(protocol);
    return NULL;
}

PyDoc_STRVAR(lane_send_doc,
"send($self, /, message, compress=None, text=None)\n--\n\n"
"Send a message now, without waiting (``str`` as text, bytes-like as binary).\n\n"
"Raises :exc:`ConnectionClosed` once closed. Doesn't wait for the\n"
"peer: watch :attr:`buffered_amount` to avoid buffering without bound.\n"
"A ``bytearray`` (or a view of one) is the caller's again when\n"
"``send()`` returns: changing or resizing it then changes nothing sent.\n"
"``text=True`` sends bytes as text (unchecked), ``text=False`` sends\n"
"``str`` as binary, as :meth:`Connection.send` does.");

/* 1 if the core would frame a message itself right now with no more than
   build_frame() (open, no compression, not sending fragments, no frame
   logging): Protocol.send_message()'s own fast path. 0, or -1 on error. */
static int
core_frames_plainly(speedups_state *st, PyObject *protocol)
{
    int r;

    if ((r = field_is(st, protocol, F_STATE, st->open_state)) != 1 ||
        (r = field_is(st, protocol, F_DEFLATE, Py_None)) != 1 ||
        (r = field_is(st, protocol, F_FRAGMENTING, Py_False)) != 1) {
        return r;
    }
    return field_is(st, protocol, F_DEBUG, Py_False);
}

/* The frame of `message` if the core would make it with no more than
   build_frame(): a str or bytes (exactly) under LARGE_PAYLOAD, on a core
   that frames plainly (see core_frames_plainly), masked for a client with a
   key from the core's own mask source. 1 with *frame_out set, 0 when the
   Python path must send it, -1 with an exception set (a str with lone
   surrogates raises what str.encode() raises). */
static int
frame_small(speedups_state *st, PyObject *self, PyObject *message, PyObject **frame_out)
{
    PyObject *protocol, *mask_fn = NULL, *mask_obj = NULL;
    const unsigned char *data;
    unsigned char mask[4];
    Py_ssize_t n;
    int head, ok;

    if (PyBytes_CheckExact(message)) {
        data = (const unsigned char *)PyBytes_AS_STRING(message);
        n = PyBytes_GET_SIZE(message);
        head = 0x82;
    }
    else if (PyUnicode_CheckExact(message)) {
        data = (const unsigned char *)PyUnicode_AsUTF8AndSize(message, &n);
        if (data == NULL) {
            return -1;
        }
        head = 0x81;
    }
    else {
        return 0;
    }
    if (n >= st->large_payload) {
        return 0;
    }
    if ((protocol = get_field(st, self, F_PROTOCOL)) == NULL) {
        return -1;
    }
    ok = core_frames_plainly(st, protocol);
    if (ok > 0) {
        mask_fn = get_field(st, protocol, F_MASK);
        if (mask_fn == NULL) {
            ok = -1;
        }
        else if (Py_IS_TYPE(mask_fn, (PyTypeObject *)st->mask_source_type)) {
            /* A client's frame: a fresh key from the core's mask source (ours: no call). */
            if (mask_source_next((MaskSource *)mask_fn, mask) < 0) {
                ok = -1;
            }
        }
        else if (mask_fn != Py_None) {
            if ((mask_obj = PyObject_CallNoArgs(mask_fn)) == NULL || get_mask(mask_obj, mask) < 0) {
                ok = -1;
            }
        }
    }
    if (ok > 0) {
        *frame_out = make_frame(head, data, n, mask_fn != Py_None ? mask : NULL);
        if (*frame_out == NULL) {
            ok = -1;
        }
    }
    Py_XDECREF(mask_obj);
    Py_XDECREF(mask_fn);
    Py_DECREF(protocol);
    return ok;
}

/* Why: the callback API's send() of a small str or bytes, the other half of
   an echo, costs two Python frames (send() and the core's send_message())
   around one build_frame(); here none. Anything else (keywords, other types,
   large messages, a core that must do more than frame it) goes to _send(). */
static PyObject *
lane_send(PyObject *self, PyTypeObject *defining_class, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwnames)
{
    speedups_state *st;
    PyObject *frame = NULL, *held = NULL, *corked = NULL, *r;
    int ok = 0;

    if ((st = state_of(defining_class)) == NULL) {
        return NULL;
    }
    if (nargs == 1 && kwnames == NULL && (ok = frame_small(st, self, args[0], &frame)) < 0) {
        return NULL;
    }
    if (!ok) {
        /* self._send(*args, **kwargs) */
        PyObject *small[4], **argv = small;
        Py_ssize_t total = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0), i;
        if (total + 1 > 4) {
            argv = PyMem_Malloc((size_t)(total + 1) * sizeof(PyObject *));
            if (argv == NULL) {
                return PyErr_NoMemory();
            }
        }
        argv[0] = self;
        for (i = 0; i < total; i++) {
            argv[i + 1] = args[i];
        }
        r = PyObject_VectorcallMethod(st->s_send, argv, (size_t)(nargs + 1), kwnames);
        if (argv != small) {
            PyMem_Free(argv);
        }
        return r;
    }
    /* ListenerConnection._write() for a small frame, inline here as in
       _send(): held while a read is handled, else written now. (Calling
       _write() instead cost 18 % per message in bench.hotpath's
       listener-burst16, the case broadcast and pipelining live in.) */
    if ((held = get_field(st, self, F_HELD)) == NULL) {
        goto error;
    }
    if (held != Py_None) {
        if (PyList_Append(held, frame) < 0) {
            goto error;
        }
    }
    else {
        if ((corked = PyObject_GetAttr(st->cork, st->s_connections)) == NULL) {
            goto error;
        }
        if (corked != Py_None) {
            PyObject *batch = PyList_New(1);
            if (batch == NULL) {
                goto error;
            }
            PyList_SET_ITEM(batch, 0, Py_NewRef(frame));
            ok = set_field(st, self, F_HELD, batch);
            Py_DECREF(batch);
            if (ok < 0 || PyList_Append(corked, self) < 0) {
                goto error;
            }
        }
        else {
            PyObject *transport = get_field(st, self, F_TRANSPORT);
            ok = transport == NULL ? -1 : write_or_queue(st, self, transport, frame);
            Py_XDECREF(transport);
            if (ok < 0) {
                goto error;
            }
        }
    }
    Py_XDECREF(corked);
    Py_DECREF(held);
    Py_DECREF(frame);
    Py_RETURN_NONE;

error:
    Py_XDECREF(corked);
    Py_XDECREF(held);
    Py_XDECREF(frame);
    return NULL;
}

/* self._hold(frame): BaseConnection._hold() in C for its two common cases:
   the first frame of a burst (written now, or queued behind a large payload
   still waiting, and the burst starts), and a frame after others already held
   in this turn (added to them; written at once past write_limit). The frame
   that starts holding, which arranges the end of the turn, is the method's.
   0, or -1 with an exception set. */
static int
hold(speedups_state *st, PyObject *self, PyObject *frame)
{
    layout *l = layout_of(st, Py_TYPE(self));
    PyObject *held = NULL, *transport = NULL, *batch = NULL, *size = NULL, *limit = NULL, *r;
    int ok = -1, how = 0;  /* 1: write (or queue) now; 2: add to the held frames; 0: the method */

    if (l != NULL && l->own_hold) {
        if ((held = get_field(st, self, F_HELD)) == NULL) {
            goto done;
        }
        if (PyList_CheckExact(held) && PyList_GET_SIZE(held) > 0) {
            how = 2;
        }
        else if (held == Py_None) {
            how = 1;
        }
    }
    if (how == 0) {
        r = call_method(self, st->s_hold, frame, NULL, NULL);
        ok = r == NULL ? -1 : 0;
        Py_XDECREF(r);
        goto done;
    }
    if (how == 2) {
        Py_ssize_t total;
        if (PyList_Append(held, frame) < 0 || (size = get_field(st, self, F_HELD_SIZE)) == NULL) {
            goto done;
        }
        total = PyLong_AsSsize_t(size);
        if (total == -1 && PyErr_Occurred()) {
            goto done;
        }
        total += PyBytes_GET_SIZE(frame);
        Py_SETREF(size, PyLong_FromSsize_t(total));
        if (size == NULL || set_field(st, self, F_HELD_SIZE, size) < 0 ||
            (limit = get_field(st, self, F_WRITE_LIMIT)) == NULL) {
            goto done;
        }
        if ((ok = PyObject_RichCompareBool(size, limit, Py_GE)) < 0) {
            goto done;
        }
        if (ok) {  /* the transport takes it now, and says when to wait */
            if ((r = call_method(self, st->s_flush_held, NULL, NULL, NULL)) == NULL) {
                ok = -1;
                goto done;
            }
            Py_DECREF(r);
        }
        ok = 0;
        goto done;
    }
    if ((transport = get_field(st, self, F_TRANSPORT)) == NULL || write_or_queue(st, self, transport, frame) < 0) {
        goto done;
    }
    if ((batch = PyList_New(0)) == NULL || (size = PyLong_FromLong(0)) == NULL ||
        set_field(st, self, F_HELD, batch) < 0 || set_field(st, self, F_HELD_SIZE, size) < 0) {
        goto done;
    }
    ok = 0;
done:
    Py_XDECREF(held);
    Py_XDECREF(transport);
    Py_XDECREF(batch);
    Py_XDECREF(size);
    Py_XDECREF(limit);
    return ok;
}

PyDoc_STRVAR(lane_send_small_doc,
"_send_small($self, message, /)\n--\n\n"
"The coroutine API's ``send()`` of a small ``str`` or ``bytes``: frame it and\n"
"give it to ``_hold()``. Return False, having done nothing, when the Python\n"
"path must send it.");

/* Why: Connection.send() stays a coroutine function (asyncio.create_task()
   takes only coroutines), but the core's send_message() it calls for a small
   message is a Python frame around one build_frame(). The frame goes to
   _hold(), which batches the frames of a turn. */
static PyObject *
lane_send_small(PyObject *self, PyTypeObject *defining_class, PyObject *const *args,
                Py_ssize_t nargs, PyObject *kwnames)
{
    speedups_state *st;
    PyObject *frame = NULL;
    int ok;

    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "_send_small() takes exactly one argument (message)");
        return NULL;
    }
    if ((st = state_of(defining_class)) == NULL) {
        return NULL;
    }
    if ((ok = frame_small(st, self, args[0], &frame)) <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    ok = hold(st, self, frame);
    Py_DECREF(frame);
    return ok < 0 ? NULL : Py_NewRef(Py_True);
}

PyDoc_STRVAR(configure_lane_doc,
"configure_lane(read_buffer, cork, open_state, closed_state, large_payload)\n--\n\n"
"Give :class:`ReadLane` what it reads: the thread-local read buffer (its\n"
"``view``), the thread-local cork (its ``connections``), and the core's\n"
"``State.OPEN`` and ``State.CLOSED``, and ``LARGE_PAYLOAD`` (messages this\n"
"big are sent by the Python path). Called once, by wsio.asyncio.listener.");

static PyObject *
configure_lane(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"read_buffer", "cork", "open_state", "closed_state", "large_payload"};
    PyObject *argv[5];
    Py_ssize_t large;
    speedups_state *st = (speedups_state *)PyModule_GetState(module);

    if (parse_args("configure_lane", args, nargs, kwnames, names, 5, 5, argv) < 0) {
        return NULL;
    }
    large = PyNumber_AsSsize_t(argv[4], PyExc_OverflowError);
    if (large == -1 && PyErr_Occurred()) {
        return NULL;
    }
    st->large_payload = large;
    Py_XSETREF(st->read_buffer, Py_NewRef(argv[0]));
    Py_XSETREF(st->cork, Py_NewRef(argv[1]));
    Py_XSETREF(st->open_state, Py_NewRef(argv[2]));
    Py_XSETREF(st->closed_state, Py_NewRef(argv[3]));
    Py_RETURN_NONE;
}

/* Drop every layout found so far (a configure_*() call changes what they say): found again on first use. */
static void
forget_layouts(speedups_state *st)
{
    for (int i = 0; i < st->nlayouts; i++) {
        Py_CLEAR(st->layouts[i].type);
    }
    st->nlayouts = 0;
}

PyDoc_STRVAR(configure_handoff_doc,
"configure_handoff(handle_events, hold, current_task, task_type, deque_type)\n--\n\n"
"Let :class:`ReadLane` do ``Connection._handle_events()`` (``handle_events``)\n"
"and ``BaseConnection._hold()`` (``hold``) itself for classes that don't\n"
"override them: ``asyncio.current_task``, ``asyncio.Task`` and\n"
"``collections.deque`` are what those methods use. Called once, by\n"
"wsio.asyncio.connection.");

static PyObject *
configure_handoff(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"handle_events", "hold", "current_task", "task_type", "deque_type"};
    PyObject *argv[5];
    speedups_state *st = (speedups_state *)PyModule_GetState(module);

    if (parse_args("configure_handoff", args, nargs, kwnames, names, 5, 5, argv) < 0) {
        return NULL;
    }
    if (!PyType_Check(argv[3]) || !PyType_Check(argv[4])) {
        PyErr_SetString(PyExc_TypeError, "task_type and deque_type must be classes");
        return NULL;
    }
    Py_XSETREF(st->handle_events_fn, Py_NewRef(argv[0]));
    Py_XSETREF(st->hold_fn, Py_NewRef(argv[1]));
    Py_XSETREF(st->current_task, Py_NewRef(argv[2]));
    Py_XSETREF(st->task_type, Py_NewRef(argv[3]));
    Py_XSETREF(st->deque_type, Py_NewRef(argv[4]));
    forget_layouts(st);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(configure_flush_doc,
"configure_flush(flush_held, is_closing)\n--\n\n"
"Let :class:`ReadLane` do ``ListenerConnection._flush_held()`` (``flush_held``)\n"
"itself, once a read is handled, for classes that don't override it; and read\n"
"``_closing`` instead of calling ``is_closing()`` on transports whose method is\n"
"``is_closing`` (asyncio's own, which returns that attribute). Called once,\n"
"by wsio.asyncio.listener.");

static PyObject *
configure_flush(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"flush_held", "is_closing"};
    PyObject *argv[2];
    speedups_state *st = (speedups_state *)PyModule_GetState(module);

    if (parse_args("configure_flush", args, nargs, kwnames, names, 2, 2, argv) < 0) {
        return NULL;
    }
    Py_XSETREF(st->flush_held_fn, Py_NewRef(argv[0]));
    Py_XSETREF(st->is_closing_fn, Py_NewRef(argv[1]));
    forget_layouts(st);
    Py_RETURN_NONE;
}

static PyMethodDef lane_methods[] = {
    {"get_buffer", (PyCFunction)(void (*)(void))(lane_get_buffer),
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, lane_get_buffer_doc},
    {"buffer_updated", (PyCFunction)(void (*)(void))(lane_buffer_updated),
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, lane_buffer_updated_doc},
    {"send", (PyCFunction)(void (*)(void))(lane_send),
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, lane_send_doc},
    {"_send_small", (PyCFunction)(void (*)(void))(lane_send_small),
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, lane_send_small_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(lane_doc,
"A base of wsio.asyncio.listener.ListenerConnection when the accelerator is\n"
"built: its ``get_buffer()``, ``buffer_updated()`` and ``send()`` in C. No state of its\n"
"own; everything is read from the connection and its core.");

static PyType_Slot lane_slots[] = {
    {Py_tp_methods, lane_methods},
    {Py_tp_doc, (void *)lane_doc},
    {0, NULL},
};

static PyType_Spec lane_spec = {
    "wsio.protocol._speedups.ReadLane",
    0,  /* object's size: a base any class with __slots__ can have beside its own */
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    lane_slots,
};

#define STATE_NAMES(X) \
    X(s_view, "view") X(s_connections, "connections") X(s_on_message, "on_message") \
    X(s_read, "_read") X(s_read_tail, "_read_tail") X(s_listener_failed, "_listener_failed") \
    X(s_flush_held, "_flush_held") X(s_after_read, "_after_read") X(s_send, "_send") \
    X(s_handle_events, "_handle_events") \
    X(s_hold, "_hold") X(s_extend, "extend") X(s_done, "done") X(s_set_result, "set_result") \
    X(s_callbacks, "_callbacks") X(s_remove_done_callback, "remove_done_callback") \
    X(s_run, "run") X(s_self, "__self__") X(s_write, "write") \
    X(s_host, "host") X(s_upgrade, "upgrade") X(s_connection, "connection") \
    X(s_ws_key, "sec-websocket-key") X(s_ws_version, "sec-websocket-version") \
    X(s_is_closing, "is_closing") X(s_closing, "_closing") X(s_join, "join") X(s_append, "append")

static int
speedups_traverse(PyObject *module, visitproc visit, void *arg)
{
    speedups_state *st = (speedups_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->read_buffer);
    Py_VISIT(st->cork);
    Py_VISIT(st->open_state);
    Py_VISIT(st->closed_state);
    Py_VISIT(st->handle_events_fn);
    Py_VISIT(st->hold_fn);
    Py_VISIT(st->flush_held_fn);
    Py_VISIT(st->is_closing_fn);
    Py_VISIT(st->empty_bytes);
    Py_VISIT(st->current_task);
    Py_VISIT(st->task_type);
    Py_VISIT(st->deque_type);
    Py_VISIT(st->mask_source_type);
    for (int i = 0; i < st->nlayouts; i++) {
        Py_VISIT(st->layouts[i].type);
    }
    return 0;
}

static int
speedups_clear(PyObject *module)
{
    speedups_state *st = (speedups_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->read_buffer);
    Py_CLEAR(st->cork);
    Py_CLEAR(st->open_state);
    Py_CLEAR(st->closed_state);
    Py_CLEAR(st->handle_events_fn);
    Py_CLEAR(st->hold_fn);
    Py_CLEAR(st->flush_held_fn);
    Py_CLEAR(st->is_closing_fn);
    Py_CLEAR(st->empty_bytes);
    Py_CLEAR(st->current_task);
    Py_CLEAR(st->task_type);
    Py_CLEAR(st->deque_type);
    Py_CLEAR(st->mask_source_type);
    forget_layouts(st);
#define CLEAR_NAME(field, text) Py_CLEAR(st->field);
    STATE_NAMES(CLEAR_NAME)
#undef CLEAR_NAME
    for (int i = 0; i < N_FIELDS; i++) {
        Py_CLEAR(st->field_names[i]);
    }
    return 0;
}

static void
speedups_free(void *module)
{
    speedups_clear((PyObject *)module);
}

static int
speedups_exec(PyObject *module)
{
    /* Heap types per module object: nothing is shared between interpreters. */
    speedups_state *st;
    PyObject *type = PyType_FromSpec(&assembly_spec);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "Assembly", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    st = (speedups_state *)PyModule_GetState(module);
    if ((type = PyType_FromModuleAndSpec(module, &mask_source_spec, NULL)) == NULL) {
        return -1;
    }
    st->mask_source_type = Py_NewRef(type);
    if (PyModule_AddObject(module, "MaskSource", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
#define INTERN_NAME(field, text) \
    if ((st->field = PyUnicode_InternFromString(text)) == NULL) { \
        return -1; \
    }
    STATE_NAMES(INTERN_NAME)
#undef INTERN_NAME
#define INTERN_FIELD(name, text) \
    if ((st->field_names[F_##name] = PyUnicode_InternFromString(text)) == NULL) { \
        return -1; \
    }
    FIELDS(INTERN_FIELD)
#undef INTERN_FIELD
    if ((st->empty_bytes = PyBytes_FromStringAndSize(NULL, 0)) == NULL) {
        return -1;
    }
    type = PyType_FromModuleAndSpec(module, &lane_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "ReadLane", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The opening handshake's request head, when it arrives whole              */
/* ------------------------------------------------------------------------ */

/* RFC 7230 3.2.6 tchar, for header names. */
static const unsigned char head_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* A header value byte RFC 7230 3.2 forbids: CTLs but HTAB, and DEL. */
#define HEAD_BAD_VALUE(c) (((c) < 0x20 && (c) != '\t') || (c) == 0x7f)

/* Where needle (size n >= 1) first occurs in data[0:size], or NULL (memmem isn't portable). */
static const char *
head_find(const char *data, Py_ssize_t size, const char *needle, Py_ssize_t n)
{
    const char *p = data, *last = data + size - n;

    while (p <= last && (p = memchr(p, needle[0], (size_t)(last - p + 1))) != NULL) {
        if (memcmp(p, needle, (size_t)n) == 0) {
            return p;
        }
        p++;
    }
    return NULL;
}

/* The one str for the bytes `key` in table (bytes -> str), added while the table
   has fewer than limit entries, else a str of its own: the Python path's
   _shared() and its fallback. New reference, or NULL with an exception. */
static PyObject *
head_text(PyObject *table, PyObject *key, Py_ssize_t limit)
{
    PyObject *text = PyDict_GetItemWithError(table, key);

    if (text != NULL) {
        return Py_NewRef(text);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    text = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), NULL);
    if (text != NULL && PyDict_GET_SIZE(table) < limit && PyDict_SetItem(table, key, text) < 0) {
        Py_CLEAR(text);
    }
    return text;
}

/* head_text() of data[0:size]. */
static PyObject *
head_text_of(PyObject *table, const char *data, Py_ssize_t size, Py_ssize_t limit)
{
    PyObject *text, *key = PyBytes_FromStringAndSize(data, size);

    if (key == NULL) {
        return NULL;
    }
    text = head_text(table, key, limit);
    Py_DECREF(key);
    return text;
}

PyDoc_STRVAR(parse_request_head_doc,
"parse_request_head(data, max_line, max_size, max_headers, names, values, lowers, shared_values, shared_max, /)\n"
"--\n\n"
"A request head that arrived whole in ``data``, in one pass: ``(path, items, index, size)``\n"
"(the target, the headers as ``Headers._list`` and ``Headers._index``, the head's size with its\n"
"blank line), or None for anything but a plain ``GET ... HTTP/1.1`` with valid header\n"
"lines within the limits, and no ``Content-Length`` or ``Transfer-Encoding``: the line-by-line\n"
"parser then says what is wrong. ``names``, ``values`` and ``lowers`` map bytes to the shared\n"
"str (header names, the values of the headers whose lower-case names are in ``shared_values``,\n"
"lower-case names), each filled up to ``shared_max`` entries.");

static PyObject *
parse_request_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *names, *values, *lowers, *shared_values, *items = NULL, *index = NULL, *path = NULL;
    Py_ssize_t max_line, max_size, max_headers, shared_max, len, end, count = 0;
    const char *data, *line, *found;
    char lower[64];

    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "parse_request_head() takes 9 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || !PyDict_Check(args[4]) || !PyDict_Check(args[5]) ||
        !PyDict_Check(args[6]) || !PyAnySet_Check(args[7])) {
        PyErr_SetString(PyExc_TypeError, "parse_request_head(): bytes, 3 ints, 3 dicts, a set, an int");
        return NULL;
    }
    max_line = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    max_size = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    max_headers = PyNumber_AsSsize_t(args[3], PyExc_OverflowError);
    shared_max = PyNumber_AsSsize_t(args[8], PyExc_OverflowError);
    if (PyErr_Occurred()) {
        return NULL;
    }
    names = args[4];
    values = args[5];
    lowers = args[6];
    shared_values = args[7];
    data = PyBytes_AS_STRING(args[0]);
    len = PyBytes_GET_SIZE(args[0]);
    if (len > max_size) {
        len = max_size;  /* the head, blank line included, must fit in max_size */
    }
    found = head_find(data, len, "\r\n\r\n", 4);
    if (found == NULL) {
        Py_RETURN_NONE;
    }
    end = found - data + 2;  /* the CRLF of the last line (or of the request line) */

    /* GET SP request-target SP HTTP/1.1: single spaces, a target of printable
       ASCII in origin-form or absolute-form; anything else is the line parser's. */
    {
        const char *eol = memchr(data, '\r', (size_t)end), *target = data + 4, *p;
        if (eol - data > max_line || eol - data < 4 + 1 + 9 || memcmp(data, "GET ", 4) != 0 ||
            memcmp(eol - 9, " HTTP/1.1", 9) != 0 || eol[1] != '\n') {
            Py_RETURN_NONE;
        }
        for (p = target; p < eol - 9; p++) {
            if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
                Py_RETURN_NONE;
            }
        }
        if (p == target || (*target != '/' && head_find(target, p - target, "://", 3) == NULL)) {
            Py_RETURN_NONE;
        }
        line = eol + 2;
        if ((path = PyUnicode_DecodeASCII(target, p - target, NULL)) == NULL) {
            return NULL;
        }
    }
    if ((items = PyList_New(0)) == NULL || (index = PyDict_New()) == NULL) {
        goto error;
    }
    while (line < data + end) {
        const char *eol = memchr(line, '\r', (size_t)(data + end - line)), *colon = line, *v, *ve, *p;
        Py_ssize_t name_len, i;
        PyObject *lower_key, *name, *key, *value, *list;
        int in_shared;

        if (eol[1] != '\n' || eol - line > max_line || ++count > max_headers) {
            goto unusual;
        }
        while (colon < eol && head_tchar[(unsigned char)*colon]) {
            colon++;
        }
        name_len = colon - line;
        if (name_len == 0 || colon == eol || *colon != ':' || name_len > (Py_ssize_t)sizeof(lower)) {
            goto unusual;  /* no name, no colon, space before it, or a name too long to share */
        }
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++) {
        }
        for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
        }
        for (p = v; p < ve; p++) {
            if (HEAD_BAD_VALUE((unsigned char)*p)) {
                goto unusual;  /* a control character, a bare CR or LF */
            }
        }
        for (i = 0; i < name_len; i++) {
            lower[i] = (char)Py_TOLOWER((unsigned char)line[i]);
        }
        if ((name_len == 14 && memcmp(lower, "content-length", 14) == 0) ||
            (name_len == 17 && memcmp(lower, "transfer-encoding", 17) == 0)) {
            goto unusual;  /* framing headers: the line parser's checks */
        }
        /* The lower-case name: whether the value is shared, and the index's key. */
        if ((lower_key = PyBytes_FromStringAndSize(lower, name_len)) == NULL) {
            goto error;
        }
        in_shared = PySet_Contains(shared_values, lower_key);
        key = in_shared < 0 ? NULL : head_text(lowers, lower_key, shared_max);
        Py_DECREF(lower_key);
        name = key == NULL ? NULL : head_text_of(names, line, name_len, shared_max);
        value = name == NULL ? NULL : in_shared ? head_text_of(values, v, ve - v, shared_max)
                                                : PyUnicode_DecodeLatin1(v, ve - v, NULL);
        if (value == NULL || PyList_Append(items, name) < 0 || PyList_Append(items, value) < 0) {
            Py_XDECREF(name);
            Py_XDECREF(value);
            Py_XDECREF(key);
            goto error;
        }
        Py_DECREF(name);
        list = PyDict_GetItemWithError(index, key);
        if (list == NULL && !PyErr_Occurred()) {
            if ((list = PyList_New(0)) != NULL && PyDict_SetItem(index, key, list) < 0) {
                Py_CLEAR(list);
            }
            Py_XDECREF(list);  /* the index holds it */
        }
        Py_DECREF(key);
        if (list == NULL || PyList_Append(list, value) < 0) {
            Py_DECREF(value);
            goto error;
        }
        Py_DECREF(value);
        line = eol + 2;
    }
    return Py_BuildValue("(NNNn)", path, items, index, end + 2);
unusual:
    Py_DECREF(path);
    Py_DECREF(items);
    Py_DECREF(index);
    Py_RETURN_NONE;
error:
    Py_XDECREF(path);
    Py_XDECREF(items);
    Py_XDECREF(index);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The usual handshake request: checked, and its Sec-WebSocket-Accept       */
/* ------------------------------------------------------------------------ */

/* SHA-1 (FIPS 180-4) of one message of at most 119 bytes: the accept key
   hashes 60 (the client's key and RFC 6455's GUID), in two blocks. */
#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void
sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, t;
    int i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (; i < 80; i++) {
        w[i] = ROL32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        t = ROL32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = ROL32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void
sha1_short(const unsigned char *data, size_t n, unsigned char digest[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    unsigned char blocks[128] = {0};
    size_t total = n + 9 <= 64 ? 64 : 128, i;
    uint64_t bits = (uint64_t)n * 8;

    memcpy(blocks, data, n);
    blocks[n] = 0x80;
    for (i = 0; i < 8; i++) {
        blocks[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    for (i = 0; i < total; i += 64) {
        sha1_block(h, blocks + i);
    }
    for (i = 0; i < 20; i++) {
        digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
    }
}

static const char b64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The one value of `name` in the headers' index when it is a single ASCII str: its
   text in *data and *size; 0 when absent, repeated or not ASCII (-1: an error). */
static int
single_ascii(PyObject *index, PyObject *name, const char **data, Py_ssize_t *size)
{
    PyObject *values = PyDict_GetItemWithError(index, name), *value;

    if (values == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!PyList_CheckExact(values) || PyList_GET_SIZE(values) != 1) {
        return 0;
    }
    value = PyList_GET_ITEM(values, 0);
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)) {
        return 0;
    }
    *data = (const char *)PyUnicode_1BYTE_DATA(value);
    *size = PyUnicode_GET_LENGTH(value);
    return 1;
}

/* Whether data[0:size] is `lower` (lower-case ASCII) but for case. */
static int
ascii_caseless_is(const char *data, Py_ssize_t size, const char *lower)
{
    Py_ssize_t i;

    if (size != (Py_ssize_t)strlen(lower)) {
        return 0;
    }
    for (i = 0; i < size; i++) {
        if (Py_TOLOWER((unsigned char)data[i]) != (unsigned char)lower[i]) {
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(usual_accept_doc,
"usual_accept(index, /)\n"
"--\n\n"
"The ``Sec-WebSocket-Accept`` value for a handshake request whose headers' lookup index\n"
"(``Headers._dict``) is the usual one: one ``Host``, ``Upgrade: websocket``, ``Connection:\n"
"Upgrade`` (each one value, any case), one valid ``Sec-WebSocket-Key`` and\n"
"``Sec-WebSocket-Version: 13``; None for anything else, which ``validate_request()``\n"
"then checks and explains. The request line (GET, HTTP/1.1) is the caller's to check.");

static PyObject *
usual_accept(PyObject *module, PyObject *index)
{
    speedups_state *st = (speedups_state *)PyModule_GetState(module);
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const char *data;
    Py_ssize_t size, i;
    unsigned char message[24 + 36], digest[20];
    char accept[28];
    int found;

    if (!PyDict_CheckExact(index)) {
        Py_RETURN_NONE;
    }
    if ((found = single_ascii(index, st->s_host, &data, &size)) <= 0 ||
        (found = single_ascii(index, st->s_upgrade, &data, &size)) <= 0 ||
        !ascii_caseless_is(data, size, "websocket") ||
        (found = single_ascii(index, st->s_connection, &data, &size)) <= 0 ||
        !ascii_caseless_is(data, size, "upgrade") ||
        (found = single_ascii(index, st->s_ws_version, &data, &size)) <= 0 ||
        size != 2 || data[0] != '1' || data[1] != '3' ||
        (found = single_ascii(index, st->s_ws_key, &data, &size)) <= 0 || size != 24 ||
        data[22] != '=' || data[23] != '=') {
        if (found < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* RFC 6455 4.1: 16 random bytes in base64, 22 digits and "==" (validate_request's _KEY_RE). */
    for (i = 0; i < 22; i++) {
        if (memchr(b64_digits, data[i], 64) == NULL) {
            Py_RETURN_NONE;
        }
    }
    memcpy(message, data, 24);
    memcpy(message + 24, guid, 36);
    sha1_short(message, sizeof(message), digest);
    for (i = 0; i < 6; i++) {  /* 18 bytes, 24 digits; then 2 bytes, 3 digits and "=" */
        uint32_t v = (uint32_t)digest[3 * i] << 16 | (uint32_t)digest[3 * i + 1] << 8 | digest[3 * i + 2];
        accept[4 * i] = b64_digits[v >> 18];
        accept[4 * i + 1] = b64_digits[(v >> 12) & 63];
        accept[4 * i + 2] = b64_digits[(v >> 6) & 63];
        accept[4 * i + 3] = b64_digits[v & 63];
    }
    {
        uint32_t v = (uint32_t)digest[18] << 16 | (uint32_t)digest[19] << 8;
        accept[24] = b64_digits[v >> 18];
        accept[25] = b64_digits[(v >> 12) & 63];
        accept[26] = b64_digits[(v >> 6) & 63];
        accept[27] = '=';
    }
    return PyUnicode_DecodeASCII(accept, 28, NULL);
}

/* ------------------------------------------------------------------------ */
/* A copy of a slotted object, without __init__                             */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(clone_slots_doc,
"clone_slots(obj, /)\n"
"--\n\n"
"A new instance of ``type(obj)`` whose ``__slots__`` hold the very objects ``obj``'s hold\n"
"(not copies of them; an unset slot stays unset), made without calling ``__init__``.\n"
"``TypeError`` unless the instance is all ``__slots__`` (no ``__dict__`` or ``__weakref__``,\n"
"no state of a C base class): what it would copy must be all there is.");

static PyObject *
clone_slots(PyObject *module, PyObject *obj)
{
    PyTypeObject *type = Py_TYPE(obj);
    PyObject *mro = type->tp_mro, *copy;
    Py_ssize_t i, slots = 0;

    (void)module;
    if (mro == NULL || !PyTuple_Check(mro) || type->tp_dictoffset != 0 || type->tp_weaklistoffset != 0) {
        goto unfit;
    }
    /* Every pointer of the instance past the object header must be a slot of some
       class in the MRO: count them against the instance's size. */
    for (i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyMemberDef *m = ((PyTypeObject *)PyTuple_GET_ITEM(mro, i))->tp_members;
        for (; m != NULL && m->name != NULL; m++) {
            if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
                goto unfit;
            }
            slots++;
        }
    }
    if (type->tp_basicsize != (Py_ssize_t)sizeof(PyObject) + slots * (Py_ssize_t)sizeof(PyObject *)) {
        goto unfit;
    }
    if ((copy = type->tp_alloc(type, 0)) == NULL) {
        return NULL;
    }
    for (i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyMemberDef *m = ((PyTypeObject *)PyTuple_GET_ITEM(mro, i))->tp_members;
        for (; m != NULL && m->name != NULL; m++) {
            PyObject *value = *(PyObject **)((char *)obj + m->offset);
            *(PyObject **)((char *)copy + m->offset) = Py_XNewRef(value);
        }
    }
    return copy;
unfit:
    PyErr_Format(PyExc_TypeError, "clone_slots(): %.200s instances aren't all __slots__", type->tp_name);
    return NULL;
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
    {"configure_lane", FASTCALL_KW(configure_lane), METH_FASTCALL | METH_KEYWORDS, configure_lane_doc},
    {"configure_handoff", FASTCALL_KW(configure_handoff), METH_FASTCALL | METH_KEYWORDS, configure_handoff_doc},
    {"configure_flush", FASTCALL_KW(configure_flush), METH_FASTCALL | METH_KEYWORDS, configure_flush_doc},
    {"parse_request_head", (PyCFunction)(void (*)(void))parse_request_head, METH_FASTCALL, parse_request_head_doc},
    {"usual_accept", usual_accept, METH_O, usual_accept_doc},
    {"clone_slots", clone_slots, METH_O, clone_slots_doc},
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
"built (``WSIO_NO_SPEEDUPS=1`` keeps the Python versions). ``ReadLane`` is the\n"
"asyncio read path (a base of Connection and ListenerConnection). Masking is done\n"
"16 bytes at a time (SSE2; 8 with plain C elsewhere), each payload is\n"
"written once into the bytes object returned, and payloads of 64 KiB or more\n"
"are processed without the GIL.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "wsio.protocol._speedups",
    speedups_doc,
    sizeof(speedups_state),
    speedups_methods,
    speedups_slots,
    speedups_traverse,
    speedups_clear,
    speedups_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
