/*
 * npy.h -- NumPy .npy files in and out, for the kforge command.
 *
 * Reads versions 1.0, 2.0 and 3.0 with a little-endian '<f4', '<f8' or '<i8'
 * descr, fortran_order False and a shape of at most 2 dims; everything else is
 * rejected with a message that names the file and the offending field. The
 * header is validated strictly and every size is checked against the file
 * size with overflow-safe arithmetic, because .npy files are untrusted input.
 * As in NumPy, a shape whose nonzero dims times the element size exceed
 * 2^63-1 bytes is refused even when another dim is 0 (its rows could not be
 * addressed).
 * Writes version 1.0 with the header padded to a multiple of 64 bytes.
 *
 * Functions return KF_OK, KF_ERR_ARG (not a valid .npy of the kinds above),
 * KF_ERR_IO (the system refused a read or write) or KF_ERR_NOMEM, and on
 * failure fill err (always NUL-terminated, "NAME: message").
 */
#ifndef KF_CLI_NPY_H
#define KF_CLI_NPY_H

#include <stddef.h>
#include <stdint.h>

/* Room for one message; longer ones are truncated. */
#define KFCLI_ERRLEN 768
/* Longest header accepted (numpy itself refuses more than 10000 bytes). */
#define KFCLI_NPY_MAX_HEADER 65536

typedef enum kfcli_npy_type {
    KFCLI_NPY_F4 = 0, /* '<f4' */
    KFCLI_NPY_F8 = 1, /* '<f8' */
    KFCLI_NPY_I8 = 2  /* '<i8' */
} kfcli_npy_type;

typedef struct kfcli_npy {
    kfcli_npy_type type;
    int ndim;         /* 0, 1 or 2 */
    int64_t shape[2]; /* shape[k] for k < ndim; 1 beyond */
    int64_t count;    /* product of the shape (1 when ndim == 0) */
    void *data;       /* malloc'd, count elements (never NULL after a successful read, even
                         when count == 0), aligned for any element type; owned by the struct */
} kfcli_npy;

/* Bytes per element of a type; its descr string ("<f8"). */
size_t kfcli_npy_elsize(kfcli_npy_type t);
const char *kfcli_npy_descr(kfcli_npy_type t);
/* The shape as NumPy prints it: "()", "(5,)", "(5, 3)". */
void kfcli_npy_shape_str(const kfcli_npy *a, char *buf, size_t cap);

/* Parses a whole .npy file held in memory (buf, len); name is only used in
 * messages. On success *a owns a fresh copy of the data (free with
 * kfcli_npy_free); on failure *a is zeroed. */
int kfcli_npy_parse(const void *buf, size_t len, const char *name, kfcli_npy *a, char *err,
                    size_t errlen);

/* Reads the file at path (messages name path). Same contract as kfcli_npy_parse. */
int kfcli_npy_read(const char *path, kfcli_npy *a, char *err, size_t errlen);

/* An open .npy file whose header was validated (against the file's size,
 * exactly as kfcli_npy_read does) but whose data was not read: slices of
 * its rows are read by offset (pread), so each MPI rank reads only its own. */
typedef struct kfcli_npy_file {
    kfcli_npy_type type;
    int ndim;           /* 0, 1 or 2 */
    int64_t shape[2];   /* as in kfcli_npy */
    int64_t count;
    uint64_t data_off;  /* byte offset of row 0 */
    int64_t row_bytes;  /* elsize (1-D) or elsize * shape[1] (2-D); 0 bytes when shape[1] is 0 */
    int fd;             /* -1 when closed */
    const char *path;   /* borrowed from kfcli_npy_open's caller: names the file in messages */
} kfcli_npy_file;

/* Opens path and validates its header (same messages as kfcli_npy_read: not
 * a regular file, bad header, Fortran order, data of the wrong size). path
 * must outlive f. On failure f is closed (kfcli_npy_close is harmless). */
int kfcli_npy_open(const char *path, kfcli_npy_file *f, char *err, size_t errlen);
/* Reads rows [r0, r1) (0 <= r0 <= r1 <= shape[0]; 1-D arrays have one
 * element a row) into out, (r1 - r0) * row_bytes bytes, as stored (the
 * file's type, little-endian). An empty slice reads nothing (out may be
 * NULL). KF_ERR_ARG for a bad range, a 0-D array, an offset that overflows,
 * or a file that shrank since it was opened; KF_ERR_IO if a read fails. */
int kfcli_npy_read_rows(kfcli_npy_file *f, int64_t r0, int64_t r1, void *out, char *err,
                        size_t errlen);
/* Closes f (a closed or zeroed-and-closed f is fine). */
void kfcli_npy_close(kfcli_npy_file *f);

/* Frees a->data and zeroes *a (a zeroed struct is fine). */
void kfcli_npy_free(kfcli_npy *a);

/* Writes the version 1.0 header of an array of a's type and shape into hdr
 * (cap bytes). Returns its length (a multiple of 64), or 0 if cap is too small. */
size_t kfcli_npy_header(const kfcli_npy *a, char *hdr, size_t cap);

/* Writes a as a new file that appears at path only when complete: the data
 * goes to a temporary file in path's directory, renamed by kfcli_npy_commit.
 * On success *tmp is the temporary file's malloc'd name. */
int kfcli_npy_stage(const char *path, const kfcli_npy *a, char **tmp, char *err, size_t errlen);
/* Nonzero when output paths a and b name one file (compared by identity:
 * "m.npy" and "./m.npy", links, hard links), so a command can refuse to
 * write two arrays to it. */
int kfcli_same_output(const char *a, const char *b);
/* commit != 0: renames tmp to path; commit == 0: removes tmp. Frees tmp
 * (NULL is allowed and does nothing). */
int kfcli_npy_commit(char *tmp, const char *path, int commit, char *err, size_t errlen);
/* kfcli_npy_stage followed by kfcli_npy_commit. */
int kfcli_npy_write(const char *path, const kfcli_npy *a, char *err, size_t errlen);

#endif
