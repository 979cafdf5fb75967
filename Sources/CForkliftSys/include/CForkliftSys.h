// System calls that Swift's Glibc module does not import (CMSG_* macros, W* status macros) or
// that are clearer in C: SCM_RIGHTS fd passing, wait-status decoding, parent-death signals,
// posix_spawn with a dup'ed control fd, and fork.
#pragma once
#include <stddef.h>
#include <sys/types.h>

/// Sends `len` bytes (at least one) with `fd` attached as SCM_RIGHTS. Returns the bytes sent
/// (possibly fewer than `len` on a stream socket; the fd travels with the first byte) or -1
/// with errno set. Retries on EINTR. Uses MSG_NOSIGNAL, so a closed peer gives EPIPE.
ssize_t fl_send_with_fd(int sock, const void *buf, size_t len, int fd);

/// Receives up to `len` bytes. When an fd arrives, it is stored in `*fd_out` (marked
/// close-on-exec); otherwise `*fd_out` is left untouched. Extra fds beyond the first are closed.
/// Returns bytes read, 0 at EOF, or -1 with errno set. Retries on EINTR.
ssize_t fl_recv_with_fd(int sock, void *buf, size_t len, int *fd_out);

/// Wait-status decoding.
int fl_wifexited(int status);
int fl_wexitstatus(int status);
int fl_wifsignaled(int status);
int fl_wtermsig(int status);

/// prctl(PR_SET_PDEATHSIG, sig). Returns 0 or -1 with errno set.
int fl_set_parent_death_signal(int sig);

/// malloc_trim(0): returns the heap's free pages to the kernel (glibc keeps them otherwise).
void fl_release_free_memory(void);

/// Allocations up to 32 MiB come from malloc's heap, and freed heap memory is kept up to 64 MiB,
/// instead of glibc's adaptive default. That default raises its mmap threshold only to the size
/// of the largest mapped block freed so far, so a block of that same size is mapped again: with
/// 600 KB requests, every body (and batch) was written into freshly faulted, zeroed pages.
void fl_reuse_large_allocations(void);

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants (workers of a dead zygote) are
/// reparented to this process instead of PID 1. Returns 0 or -1 with errno set.
int fl_set_child_subreaper(void);

/// fork(): Swift marks it unavailable on some platforms; the zygote needs it.
pid_t fl_fork(void);

/// posix_spawn of `path` with `argv`/`envp`, with `control_fd` dup'ed onto `target_fd` in the
/// child (cleared of close-on-exec), every signal's disposition reset to default and an empty
/// signal mask. Returns 0 and stores the pid, or an errno value.
int fl_spawn(const char *path, char *const argv[], char *const envp[], int control_fd, int target_fd,
             pid_t *pid_out);

/// Number of entries in /proc/self/task (threads of this process), or -1 when unreadable.
int fl_thread_count(void);

/// memfd_create(name, MFD_CLOEXEC): anonymous memory with an fd, to map in another process.
/// Returns the fd or -1 with errno set.
int fl_memfd_create(const char *name);

/// Names the calling thread for `top -H`, perf and /proc (its first 15 bytes: Linux's limit).
/// Foundation's `Thread.name` does not reach Linux's thread name, so pool threads showed the
/// name of the thread that started them.
void fl_name_current_thread(const char *name);
