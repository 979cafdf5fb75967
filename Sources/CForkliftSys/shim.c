#define _GNU_SOURCE
#include "CForkliftSys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

ssize_t fl_send_with_fd(int sock, const void *buf, size_t len, int fd) {
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    for (;;) {
        ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        return sent;
    }
}

ssize_t fl_recv_with_fd(int sock, void *buf, size_t len, int *fd_out) {
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t got;
    for (;;) {
        got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR) continue;
        break;
    }
    if (got < 0) return got;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
            // Only one fd per message is expected; a second one would leak, so close it.
            if (*fd_out < 0) {
                *fd_out = fd;
            } else {
                close(fd);
            }
        }
    }
    return got;
}

int fl_wifexited(int status) { return WIFEXITED(status); }
int fl_wexitstatus(int status) { return WEXITSTATUS(status); }
int fl_wifsignaled(int status) { return WIFSIGNALED(status); }
int fl_wtermsig(int status) { return WTERMSIG(status); }

int fl_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0); }

void fl_release_free_memory(void) { malloc_trim(0); }

void fl_reuse_large_allocations(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int fl_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0, 0, 0); }

pid_t fl_fork(void) { return fork(); }

int fl_spawn(const char *path, char *const argv[], char *const envp[], int control_fd, int target_fd,
             pid_t *pid_out) {
    int source = control_fd;
    int temporary = -1;
    if (source == target_fd) {
        // dup2 onto itself would keep FD_CLOEXEC on older glibc: move it out of the way first.
        temporary = fcntl(control_fd, F_DUPFD_CLOEXEC, target_fd + 1);
        if (temporary < 0) return errno;
        source = temporary;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) goto out_fd;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) goto out_actions;
    rc = posix_spawn_file_actions_adddup2(&actions, source, target_fd);
    if (rc != 0) goto out_attr;
    // The server ignores SIGPIPE; the zygote and its workers start from default dispositions.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (rc != 0) goto out_attr;
    // posix_spawnp: a bare name (argv[0] as typed) is looked up in PATH like the shell did.
    rc = posix_spawnp(pid_out, path, &actions, &attr, argv, envp);
out_attr:
    posix_spawnattr_destroy(&attr);
out_actions:
    posix_spawn_file_actions_destroy(&actions);
out_fd:
    if (temporary >= 0) close(temporary);
    return rc;
}

int fl_thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(dir);
    return count;
}

int fl_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

void fl_name_current_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = '\0';
    pthread_setname_np(pthread_self(), truncated);
}
