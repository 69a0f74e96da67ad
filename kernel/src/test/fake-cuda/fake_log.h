// fluxbatch: logging shared by the fake CUDA libraries (libcuda.so.1, libcublas.so.13, libnvrtc.so.13 built from
// this folder by CudaDriverDeviceOnFakeDriverTest). Each line goes to the file named by FAKE_CUDA_LOG (appended with
// one write(2), so the three libraries and several threads can share the file) and, for FAULT lines or when
// FAKE_CUDA_VERBOSE=1, to stderr. Lines start with the event: "launch", "gemm", "module", "nvrtc-compile", "error"
// (a call returned an error code), "FAULT" (something a real GPU would make a crash, a hang or wrong data of: the
// test requires none), "context", "note".

#pragma once

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace fake_log {

inline void vline(const char* fmt, va_list ap) {
    char buf[8192];
    int n = std::vsnprintf(buf, sizeof buf - 2, fmt, ap);
    if (n < 0) {
        return;
    }
    if (n > (int) sizeof buf - 2) {
        n = (int) sizeof buf - 2;
    }
    buf[n++] = '\n';
    const char* path = std::getenv("FAKE_CUDA_LOG");
    if (path != nullptr && *path != '\0') {
        int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t ignored = ::write(fd, buf, (size_t) n);
            (void) ignored;
            ::close(fd);
        }
    }
    const char* verbose = std::getenv("FAKE_CUDA_VERBOSE");
    if (std::strncmp(buf, "FAULT", 5) == 0 || (verbose != nullptr && std::strcmp(verbose, "1") == 0)) {
        ssize_t ignored = ::write(2, "fake-cuda: ", 11);
        ignored = ::write(2, buf, (size_t) n);
        (void) ignored;
    }
}

__attribute__((format(printf, 1, 2))) inline void line(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

} // namespace fake_log
