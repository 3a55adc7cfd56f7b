/*
 * wsio.asyncio._transport: the two steps of asyncio's socket transport that
 * run for every read and every write, in C (see wsio/asyncio/transport.py).
 *
 * asyncio's selector loop spends two Python frames on each read of a socket
 * (_read_ready(), which calls _read_ready__get_buffer()) and one on each
 * write (write()). A Pump does the common case of each in C:
 *
 *   read_ready(): the transport isn't closed and its protocol is a
 *     BufferedProtocol: get_buffer(-1), recv() into it, buffer_updated(n);
 *   write(data): bytes, bytearray or memoryview, nothing queued, not closed,
 *     no write_eof() and no sendfile: send() it, and return if all went.
 *
 * Anything else goes to asyncio's own code, unchanged: a plain Protocol's
 * read (_read_ready__data_received), end of file (_read_ready__on_eof), every
 * error (_fatal_error, with asyncio's messages), and every write that doesn't
 * go whole at once (the transport's own write(), which queues it, watches for
 * the socket to be writable and pauses the protocol). So the transport's rules
 * (flow control, closing, pausing) stay asyncio's; this only saves frames.
 *
 * SystemExit and KeyboardInterrupt raised by the protocol propagate, as in
 * asyncio; any other exception is handed to _fatal_error(). send() uses
 * MSG_NOSIGNAL: a reset peer is an EPIPE, whatever SIGPIPE's disposition.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <structmember.h>  /* T_INT, READONLY */

#include <errno.h>
#include <sys/socket.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

typedef struct {
    PyObject *buffered_protocol; /* asyncio.BufferedProtocol */
    PyObject *minus_one;
    PyObject *s_conn_lost;
    PyObject *s_protocol;
    PyObject *s_buffer;
    PyObject *s_eof;
    PyObject *s_empty_waiter;
    PyObject *s_get_buffer;
    PyObject *s_buffer_updated;
    PyObject *s_fatal_error;
    PyObject *s_read_data;
    PyObject *s_on_eof;
    PyObject *s_lost_after_read;
} transport_state;

typedef struct {
    PyObject_HEAD
    PyObject *transport;     /* the asyncio transport whose steps these are */
    PyObject *write_queued;  /* asyncio's own write(transport, data): everything but the common case */
    PyTypeObject *seen_type; /* the protocol type last checked, and whether it is buffered */
    int seen_buffered;
    int fd;
    int reading;           /* in the protocol's buffer_updated() (read-only to Python) */
    int lose_after_read;   /* set by the transport's close() meanwhile: connection_lost() once it returns */
} Pump;

static transport_state *
state_of(PyObject *self)
{
    return (transport_state *)PyType_GetModuleState(Py_TYPE(self));
}

/* Whether the pending exception must propagate (SystemExit, KeyboardInterrupt). */
static int
must_propagate(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

/* The pending exception goes to transport._fatal_error(exc, message), as
   asyncio's except BaseException clauses do; SystemExit and
   KeyboardInterrupt stay raised. */
static PyObject *
fatal_error(transport_state *st, PyObject *transport, const char *message)
{
    PyObject *exc, *text, *result;

    if (must_propagate()) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    exc = PyErr_GetRaisedException();
#else
    {
        PyObject *type, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        PyErr_NormalizeException(&type, &exc, &tb);
        if (tb != NULL) {
            PyException_SetTraceback(exc, tb);
        }
        Py_XDECREF(type);
        Py_XDECREF(tb);
    }
#endif
    if (exc == NULL) {
        return NULL;
    }
    if ((text = PyUnicode_FromString(message)) == NULL) {
        Py_DECREF(exc);
        return NULL;
    }
    {
        PyObject *argv[3] = {transport, exc, text};
        result = PyObject_VectorcallMethod(st->s_fatal_error, argv, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_DECREF(text);
    Py_DECREF(exc);
    return result;
}

/* Truth of transport.<name>: 1, 0, or -1 with an exception set. */
static int
attr_true(PyObject *transport, PyObject *name)
{
    int r;
    PyObject *value = PyObject_GetAttr(transport, name);

    if (value == NULL) {
        return -1;
    }
    r = PyObject_IsTrue(value);
    Py_DECREF(value);
    return r;
}

/* Whether the protocol is a BufferedProtocol: 1, 0 or -1; asked once per protocol type. */
static int
is_buffered(Pump *self, transport_state *st, PyObject *protocol)
{
    int r;

    if (Py_TYPE(protocol) == self->seen_type) {
        return self->seen_buffered;
    }
    if ((r = PyObject_IsInstance(protocol, st->buffered_protocol)) < 0) {
        return -1;
    }
    Py_XSETREF(self->seen_type, (PyTypeObject *)Py_NewRef(Py_TYPE(protocol)));
    self->seen_buffered = r;
    return r;
}

/* One recv() or, sending, one send() on fd, retried when a signal interrupts
   it (PEP 475) unless its handler raises: then -1 with errno EINTR and the
   handler's exception set. */
static Py_ssize_t
socket_io(int fd, void *buf, Py_ssize_t len, int sending)
{
    Py_ssize_t n;

    for (;;) {
        n = sending ? send(fd, buf, (size_t)len, MSG_NOSIGNAL) : recv(fd, buf, (size_t)len, 0);
        if (n >= 0 || errno != EINTR) {
            return n;
        }
        if (PyErr_CheckSignals() < 0) {
            errno = EINTR;
            return -1;
        }
    }
}

static int
would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* A recv() or send() that failed with err (not EAGAIN) goes to _fatal_error():
   the signal handler's exception for EINTR, else the OSError. */
static PyObject *
io_failed(transport_state *st, PyObject *transport, int err, const char *message)
{
    if (err != EINTR) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    }
    return fatal_error(st, transport, message);
}

PyDoc_STRVAR(pump_read_ready_doc,
"read_ready($self, /)\n--\n\n"
"What the event loop calls when the socket is readable: asyncio's\n"
"``_read_ready()`` for a BufferedProtocol, in C.");

static PyObject *
pump_read_ready(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    Pump *self = (Pump *)op;
    transport_state *st = state_of(op);
    PyObject *transport = self->transport, *protocol, *buffer, *result;
    Py_buffer view;
    Py_ssize_t n;
    int r, err;

    if ((r = attr_true(transport, st->s_conn_lost)) != 0) {
        return r < 0 ? NULL : Py_NewRef(Py_None);
    }
    if ((protocol = PyObject_GetAttr(transport, st->s_protocol)) == NULL) {
        return NULL;
    }
    if ((r = is_buffered(self, st, protocol)) <= 0) {
        Py_DECREF(protocol);
        return r < 0 ? NULL : PyObject_CallMethodNoArgs(transport, st->s_read_data);
    }
    {
        PyObject *argv[2] = {protocol, st->minus_one};
        buffer = PyObject_VectorcallMethod(st->s_get_buffer, argv, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    if (buffer == NULL) {
        goto get_buffer_failed;
    }
    r = PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE);
    Py_DECREF(buffer);
    if (r < 0) {
        goto get_buffer_failed;
    }
    if (view.len == 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
        goto get_buffer_failed;
    }
    n = socket_io(self->fd, view.buf, view.len, 0);
    err = errno; /* before anything else can change it */
    PyBuffer_Release(&view);
    if (n < 0) {
        Py_DECREF(protocol);
        if (would_block(err)) {
            Py_RETURN_NONE;
        }
        return io_failed(st, transport, err, "Fatal read error on socket transport");
    }
    if (n == 0) {
        Py_DECREF(protocol);
        return PyObject_CallMethodNoArgs(transport, st->s_on_eof);
    }
    {
        PyObject *nbytes = PyLong_FromSsize_t(n);
        PyObject *argv[2] = {protocol, nbytes};
        if (nbytes == NULL) {
            Py_DECREF(protocol);
            return NULL;
        }
        self->reading = 1;
        result = PyObject_VectorcallMethod(st->s_buffer_updated, argv, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        self->reading = 0;
        Py_DECREF(nbytes);
    }
    Py_DECREF(protocol);
    if (result == NULL) {
        result = fatal_error(st, transport, "Fatal error: protocol.buffer_updated() call failed.");
    }
    if (self->lose_after_read) {
        /* The protocol closed the transport in that call, with nothing left to write:
           its connection_lost() now, not in a callback of the loop's next turn. */
        self->lose_after_read = 0;
        if (result == NULL) {
            if (must_propagate()) {
                return NULL;
            }
            PyErr_WriteUnraisable(transport);  /* cannot happen: _fatal_error() reports, doesn't raise */
        }
        Py_XDECREF(result);
        return PyObject_CallMethodNoArgs(transport, st->s_lost_after_read);
    }
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_NONE;

get_buffer_failed:
    Py_DECREF(protocol);
    return fatal_error(st, transport, "Fatal error: protocol.get_buffer() call failed.");
}

/* asyncio's own write(transport, data). */
static PyObject *
write_queued(Pump *self, PyObject *data)
{
    PyObject *argv[2] = {self->transport, data};
    return PyObject_Vectorcall(self->write_queued, argv, 2, NULL);
}

PyDoc_STRVAR(pump_write_doc,
"write($self, data, /)\n--\n\n"
"The transport's ``write()``: sent at once when nothing is queued and it all\n"
"goes; anything else is asyncio's own ``write()``.");

static PyObject *
pump_write(PyObject *op, PyObject *data)
{
    Pump *self = (Pump *)op;
    transport_state *st = state_of(op);
    PyObject *transport = self->transport, *queue, *view_object, *rest;
    Py_buffer view;
    Py_ssize_t n, queued;
    int r, err, whole;

    if (!(PyBytes_CheckExact(data) || PyByteArray_CheckExact(data) || PyMemoryView_Check(data))) {
        return write_queued(self, data); /* its TypeError */
    }
    /* asyncio's write() checks, in its order: any of them set, it decides. */
    if ((r = attr_true(transport, st->s_eof)) != 0) {
        return r < 0 ? NULL : write_queued(self, data);
    }
    {
        PyObject *waiter = PyObject_GetAttr(transport, st->s_empty_waiter);
        if (waiter == NULL) {
            return NULL;
        }
        r = waiter != Py_None;
        Py_DECREF(waiter);
        if (r) {
            return write_queued(self, data);
        }
    }
    if ((r = attr_true(transport, st->s_conn_lost)) != 0) {
        return r < 0 ? NULL : write_queued(self, data);
    }
    if ((queue = PyObject_GetAttr(transport, st->s_buffer)) == NULL) {
        return NULL;
    }
    queued = PyObject_Length(queue);
    Py_DECREF(queue);
    if (queued != 0) {
        return queued < 0 ? NULL : write_queued(self, data);
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear(); /* not contiguous: asyncio's write() takes it */
        return write_queued(self, data);
    }
    if (view.len == 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    n = socket_io(self->fd, view.buf, view.len, 1);
    err = errno; /* before anything else can change it */
    whole = n == view.len;
    PyBuffer_Release(&view);
    if (whole) {
        Py_RETURN_NONE;
    }
    if (n < 0) {
        return would_block(err) ? write_queued(self, data)
                                : io_failed(st, transport, err, "Fatal write error on socket transport");
    }
    /* Part of it went: asyncio's write() queues the rest (after one more try). */
    if ((view_object = PyMemoryView_FromObject(data)) == NULL) {
        return NULL;
    }
    rest = PySequence_GetSlice(view_object, n, PY_SSIZE_T_MAX);
    Py_DECREF(view_object);
    if (rest == NULL) {
        return NULL;
    }
    view_object = write_queued(self, rest);
    Py_DECREF(rest);
    return view_object;
}

/* The pump itself is what the transport holds as its _read_ready and its
   write: called with no argument it reads, with one it writes. One object per
   connection, not two bound methods besides (about 150 bytes per idle
   connection). */
static PyObject *
pump_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "a Pump takes no keyword arguments");
        return NULL;
    }
    if (n == 0) {
        return pump_read_ready(op, NULL);
    }
    if (n == 1) {
        return pump_write(op, PyTuple_GET_ITEM(args, 0));
    }
    PyErr_Format(PyExc_TypeError, "a Pump takes no argument (read) or one (write), not %zd", n);
    return NULL;
}

static PyObject *
pump_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *transport, *write;
    int fd;
    Pump *self;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Pump() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OiO:Pump", &transport, &fd, &write)) {
        return NULL;
    }
    if ((self = (Pump *)type->tp_alloc(type, 0)) == NULL) {
        return NULL;
    }
    self->transport = Py_NewRef(transport);
    self->write_queued = Py_NewRef(write);
    self->seen_type = NULL;
    self->seen_buffered = 0;
    self->fd = fd;
    self->reading = 0;
    self->lose_after_read = 0;
    return (PyObject *)self;
}

static int
pump_traverse(PyObject *op, visitproc visit, void *arg)
{
    Pump *self = (Pump *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->transport);
    Py_VISIT(self->write_queued);
    Py_VISIT(self->seen_type);
    return 0;
}

static int
pump_clear(PyObject *op)
{
    Pump *self = (Pump *)op;
    Py_CLEAR(self->transport);
    Py_CLEAR(self->write_queued);
    Py_CLEAR(self->seen_type);
    return 0;
}

static void
pump_dealloc(PyObject *op)
{
    PyTypeObject *type = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    pump_clear(op);
    type->tp_free(op);
    Py_DECREF(type);
}

static PyMemberDef pump_members[] = {
    {"reading", T_INT, offsetof(Pump, reading), READONLY,
     "Whether the protocol's buffer_updated() is running (the transport's close() looks)."},
    {"lose_after_read", T_INT, offsetof(Pump, lose_after_read), 0,
     "Set by the transport's close() while reading: it calls _lost_after_read() once buffer_updated() returns."},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef pump_methods[] = {
    {"read_ready", pump_read_ready, METH_NOARGS, pump_read_ready_doc},
    {"write", pump_write, METH_O, pump_write_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(pump_doc,
"Pump(transport, fd, write, /)\n--\n\n"
"The per-read and per-write steps of an asyncio socket transport, in C.\n\n"
"``transport`` is a ``_SelectorSocketTransport`` reading and writing the\n"
"socket ``fd``; ``write`` is asyncio's own ``write(transport, data)``, which\n"
"takes every write this can't finish at once. ``pump()`` is ``read_ready()``\n"
"and ``pump(data)`` is ``write(data)``.");

static PyType_Slot pump_slots[] = {
    {Py_tp_doc, (void *)pump_doc},
    {Py_tp_new, pump_new},
    {Py_tp_traverse, pump_traverse},
    {Py_tp_clear, pump_clear},
    {Py_tp_dealloc, pump_dealloc},
    {Py_tp_methods, pump_methods},
    {Py_tp_members, pump_members},
    {Py_tp_call, pump_call},
    {0, NULL},
};

static PyType_Spec pump_spec = {
    "wsio.asyncio._transport.Pump",
    sizeof(Pump),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    pump_slots,
};

#define STATE_NAMES(X) \
    X(s_conn_lost, "_conn_lost") \
    X(s_protocol, "_protocol") \
    X(s_buffer, "_buffer") \
    X(s_eof, "_eof") \
    X(s_empty_waiter, "_empty_waiter") \
    X(s_get_buffer, "get_buffer") \
    X(s_buffer_updated, "buffer_updated") \
    X(s_fatal_error, "_fatal_error") \
    X(s_read_data, "_read_ready__data_received") \
    X(s_on_eof, "_read_ready__on_eof") \
    X(s_lost_after_read, "_lost_after_read")

static int
transport_exec(PyObject *module)
{
    transport_state *st = (transport_state *)PyModule_GetState(module);
    PyObject *asyncio, *type;

#define INTERN_NAME(field, text) \
    if ((st->field = PyUnicode_InternFromString(text)) == NULL) { \
        return -1; \
    }
    STATE_NAMES(INTERN_NAME)
#undef INTERN_NAME
    if ((st->minus_one = PyLong_FromLong(-1)) == NULL) {
        return -1;
    }
    if ((asyncio = PyImport_ImportModule("asyncio")) == NULL) {
        return -1;
    }
    st->buffered_protocol = PyObject_GetAttrString(asyncio, "BufferedProtocol");
    Py_DECREF(asyncio);
    if (st->buffered_protocol == NULL) {
        return -1;
    }
    if ((type = PyType_FromModuleAndSpec(module, &pump_spec, NULL)) == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "Pump", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static int
transport_traverse(PyObject *module, visitproc visit, void *arg)
{
    transport_state *st = (transport_state *)PyModule_GetState(module);
    Py_VISIT(st->buffered_protocol);
    return 0;
}

static int
transport_clear(PyObject *module)
{
    transport_state *st = (transport_state *)PyModule_GetState(module);
#define CLEAR_NAME(field, text) Py_CLEAR(st->field);
    STATE_NAMES(CLEAR_NAME)
#undef CLEAR_NAME
    Py_CLEAR(st->minus_one);
    Py_CLEAR(st->buffered_protocol);
    return 0;
}

static void
transport_free(void *module)
{
    transport_clear((PyObject *)module);
}

static PyModuleDef_Slot transport_slots[] = {
    {Py_mod_exec, transport_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(transport_doc,
"The per-read and per-write steps of asyncio's socket transport in C\n"
"(``Pump``), for :mod:`wsio.asyncio.transport`.");

static struct PyModuleDef transport_module = {
    PyModuleDef_HEAD_INIT,
    "wsio.asyncio._transport",
    transport_doc,
    sizeof(transport_state),
    NULL,
    transport_slots,
    transport_traverse,
    transport_clear,
    transport_free,
};

PyMODINIT_FUNC
PyInit__transport(void)
{
    return PyModuleDef_Init(&transport_module);
}
