// fluxbatch: a FAKE libnvrtc.so.13 for CudaDriverDeviceOnFakeDriverTest: the NVRTC calls of CudaDriverDevice's
// fallback (a module whose fatbin has no code for the GPU is compiled from its .cu source and cached on disk).
//
// JavaCPP's libjninvrtc.so binds versioned symbols (nvrtcCompileProgram@libnvrtc.so.13 ...): libnvrtc.map.
//
// nvrtcCompileProgram checks the options as NVRTC would (one --gpu-architecture / -arch, known options only, else
// NVRTC_ERROR_INVALID_OPTION), logs them ("nvrtc-compile" line: the test counts these to see the disk cache work),
// finds the source's extern "C" __global__ kernels, and makes a fake CUBIN that the fake driver's cuModuleLoadData
// takes: "FAKECUBIN\narch=sm_XY\nname=NAME.cu\nkernels=a,b,c\n". Only a real architecture (sm_XY) has a CUBIN.
//
// With FAKE_NVRTC_CXX (a g++) and FAKE_NVRTC_CUDA_HOST_H (kernel/src/test/cuda-host/cuda_host.h) set, it also checks
// that the source compiles the way NVRTC sees it: preprocessed with __CUDACC_RTC__, __CUDACC__ and __CUDA_ARCH__
// defined and NO system headers (-nostdinc: NVRTC has no <stdint.h> and the like), then compiled as C++ against the
// CUDA emulation; a failure is NVRTC_ERROR_COMPILATION with g++'s messages as the program log.

#include "fake_log.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

enum : int {
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6,
};

struct Program {
    uint32_t magic = 0x0A77C0DEu;
    std::string source;
    std::string name;
    std::string log;
    std::string cubin;
    bool compiled = false;
};

bool live(const Program* p) {
    return p != nullptr && p->magic == 0x0A77C0DEu;
}

int result(const char* call, int r, const std::string& why) {
    if (r != NVRTC_SUCCESS) {
        fake_log::line("error %s -> nvrtcResult %d: %s", call, r, why.c_str());
    }
    return r;
}

// The source with its comments blanked (string literals are left alone; the .cu files have no "//" in strings).
std::string strip_comments(const std::string& s) {
    std::string out = s;
    for (size_t i = 0; i + 1 < out.size(); i++) {
        if (out[i] == '/' && out[i + 1] == '/') {
            while (i < out.size() && out[i] != '\n') {
                out[i++] = ' ';
            }
        } else if (out[i] == '/' && out[i + 1] == '*') {
            size_t end = out.find("*/", i + 2);
            end = end == std::string::npos ? out.size() : end + 2;
            for (; i < end; i++) {
                if (out[i] != '\n') {
                    out[i] = ' ';
                }
            }
        }
    }
    return out;
}

// The names of the extern "C" __global__ functions: extern "C", then __global__ and the declaration's other words
// (void, __launch_bounds__(...)), then the name before '('.
std::vector<std::string> kernels_of(const std::string& source) {
    std::string s = strip_comments(source);
    std::vector<std::string> names;
    const std::string EXTERN = "extern \"C\"";
    for (size_t at = s.find(EXTERN); at != std::string::npos; at = s.find(EXTERN, at + 1)) {
        size_t i = at + EXTERN.size();
        bool global = false;
        for (;;) {
            while (i < s.size() && std::isspace((unsigned char) s[i])) {
                i++;
            }
            size_t start = i;
            while (i < s.size() && (std::isalnum((unsigned char) s[i]) || s[i] == '_')) {
                i++;
            }
            if (i == start) {
                break; // not an identifier: '{', ';' ...
            }
            std::string word = s.substr(start, i - start);
            while (i < s.size() && std::isspace((unsigned char) s[i])) {
                i++;
            }
            if (word == "__global__") {
                global = true;
                continue;
            }
            if (word == "__launch_bounds__" && i < s.size() && s[i] == '(') {
                int depth = 0;
                do {
                    depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
                    i++;
                } while (i < s.size() && depth > 0);
                continue;
            }
            if (i < s.size() && s[i] == '(') {
                if (global) {
                    names.push_back(word);
                }
                break;
            }
        }
    }
    return names;
}

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

// Runs argv, its stdout and stderr into *output; the exit status (-1 when it could not run).
int run(const std::vector<std::string>& argv, std::string* output) {
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(pipefd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0) {
        output->append(buf, (size_t) n);
    }
    close(pipefd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The host check of the file header: "" when it passes (or is not configured), else g++'s messages.
std::string host_check(const Program& p, const std::string& arch) {
    const char* cxx = std::getenv("FAKE_NVRTC_CXX");
    const char* host = std::getenv("FAKE_NVRTC_CUDA_HOST_H");
    if (cxx == nullptr || host == nullptr || *cxx == '\0' || *host == '\0') {
        return "";
    }
    char dir[] = "/tmp/fake-nvrtc-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
        return "";
    }
    std::string d = dir;
    std::string src = d + "/" + (p.name.empty() ? "program.cu" : p.name);
    std::string pre = d + "/preprocessed.cpp";
    FILE* f = std::fopen(src.c_str(), "wb");
    if (f == nullptr) {
        return "";
    }
    std::fwrite(p.source.data(), 1, p.source.size(), f);
    std::fclose(f);
    int cudaArch = std::atoi(arch.c_str() + 3) * 10;
    std::string out;
    int rc = run({cxx, "-E", "-P", "-nostdinc", "-x", "c++", "-D__CUDACC_RTC__", "-D__CUDACC__",
                  "-D__CUDA_ARCH__=" + std::to_string(cudaArch), "-o", pre, src}, &out);
    std::string log;
    if (rc != 0) {
        log = "preprocessing as NVRTC (no system headers) failed:\n" + out;
    } else {
        out.clear();
        rc = run({cxx, "-std=c++20", "-fsyntax-only", "-Wno-unknown-pragmas", "-include", host, "-x", "c++", pre},
                 &out);
        if (rc != 0) {
            log = "the preprocessed source does not compile against cuda_host.h:\n" + out;
        }
    }
    unlink(src.c_str());
    unlink(pre.c_str());
    rmdir(dir);
    return log;
}

} // namespace

extern "C" {

typedef struct _nvrtcProgram* nvrtcProgram;

const char* nvrtcGetErrorString(int r) {
    switch (r) {
        case NVRTC_SUCCESS: return "NVRTC_SUCCESS";
        case NVRTC_ERROR_OUT_OF_MEMORY: return "NVRTC_ERROR_OUT_OF_MEMORY";
        case NVRTC_ERROR_PROGRAM_CREATION_FAILURE: return "NVRTC_ERROR_PROGRAM_CREATION_FAILURE";
        case NVRTC_ERROR_INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
        case NVRTC_ERROR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
        case NVRTC_ERROR_INVALID_OPTION: return "NVRTC_ERROR_INVALID_OPTION";
        case NVRTC_ERROR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
        default: return "NVRTC_ERROR unknown";
    }
}

int nvrtcVersion(int* major, int* minor) {
    if (major == nullptr || minor == nullptr) {
        return result("nvrtcVersion", NVRTC_ERROR_INVALID_INPUT, "null output");
    }
    *major = 13;
    *minor = 1;
    return NVRTC_SUCCESS;
}

int nvrtcCreateProgram(nvrtcProgram* prog, const char* src, const char* name, int numHeaders,
                       const char* const* headers, const char* const* includeNames) {
    if (prog == nullptr) {
        return result("nvrtcCreateProgram", NVRTC_ERROR_INVALID_PROGRAM, "prog is null");
    }
    if (src == nullptr || numHeaders < 0 || (numHeaders > 0 && (headers == nullptr || includeNames == nullptr))) {
        return result("nvrtcCreateProgram", NVRTC_ERROR_INVALID_INPUT, "src null or bad headers");
    }
    Program* p = new Program();
    p->source = src;
    p->name = name != nullptr ? name : "default_program";
    *prog = reinterpret_cast<nvrtcProgram>(p);
    return NVRTC_SUCCESS;
}

int nvrtcDestroyProgram(nvrtcProgram* prog) {
    if (prog == nullptr || !live(reinterpret_cast<Program*>(*prog))) {
        return result("nvrtcDestroyProgram", NVRTC_ERROR_INVALID_PROGRAM, "not a live program");
    }
    Program* p = reinterpret_cast<Program*>(*prog);
    p->magic = 0;
    delete p;
    *prog = nullptr;
    return NVRTC_SUCCESS;
}

int nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char* const* options) {
    Program* p = reinterpret_cast<Program*>(prog);
    if (!live(p)) {
        return result("nvrtcCompileProgram", NVRTC_ERROR_INVALID_PROGRAM, "not a live program");
    }
    if (numOptions < 0 || (numOptions > 0 && options == nullptr)) {
        return result("nvrtcCompileProgram", NVRTC_ERROR_INVALID_INPUT, "bad options array");
    }
    std::string arch, all;
    int archCount = 0;
    for (int i = 0; i < numOptions; i++) {
        if (options[i] == nullptr) {
            return result("nvrtcCompileProgram", NVRTC_ERROR_INVALID_INPUT, "option " + std::to_string(i) + " is null");
        }
        std::string o = options[i];
        all += (i == 0 ? "" : " ") + o;
        if (starts_with(o, "--gpu-architecture=") || starts_with(o, "-arch=")) {
            arch = o.substr(o.find('=') + 1);
            archCount++;
        } else if (o == "-std=c++11" || o == "-std=c++14" || o == "-std=c++17" || o == "-std=c++20"
                   || o == "--std=c++17" || o == "--std=c++20" || o == "-default-device" || o == "--use_fast_math"
                   || o == "-use_fast_math" || o == "-lineinfo" || o == "--generate-line-info" || o == "-G"
                   || starts_with(o, "--fmad=") || starts_with(o, "-fmad=") || starts_with(o, "-D")
                   || starts_with(o, "-I") || starts_with(o, "--include-path=") || starts_with(o, "-ftz=")
                   || starts_with(o, "-prec-div=") || starts_with(o, "-prec-sqrt=") || starts_with(o, "-maxrregcount=")
                   || o == "--extra-device-vectorization" || o == "-dopt=on") {
            // accepted
        } else {
            p->log = "nvrtc: error: unrecognized option " + o + "\n";
            fake_log::line("nvrtc-compile program=%s options=[%s] -> invalid option %s", p->name.c_str(), all.c_str(),
                           o.c_str());
            return result("nvrtcCompileProgram", NVRTC_ERROR_INVALID_OPTION, "unrecognized option " + o);
        }
    }
    if (archCount > 1) {
        p->log = "nvrtc: error: more than one --gpu-architecture\n";
        return result("nvrtcCompileProgram", NVRTC_ERROR_INVALID_OPTION, "two architectures");
    }
    if (arch.empty()) {
        arch = "compute_75"; // NVRTC's default: PTX only
    }
    if (!(starts_with(arch, "sm_") || starts_with(arch, "compute_")) || arch.size() < 5) {
        p->log = "nvrtc: error: invalid value for --gpu-architecture (-arch): " + arch + "\n";
        return result("nvrtcCompileProgram", NVRTC_ERROR_INVALID_OPTION, "architecture " + arch);
    }
    std::vector<std::string> kernels = kernels_of(p->source);
    std::string list;
    for (const std::string& k : kernels) {
        list += (list.empty() ? "" : ",") + k;
    }
    std::string realArch = starts_with(arch, "sm_") ? arch : "sm_" + arch.substr(8);
    std::string check = host_check(*p, realArch);
    fake_log::line("nvrtc-compile program=%s options=[%s] kernels=%s host-check=%s", p->name.c_str(), all.c_str(),
                   list.c_str(), std::getenv("FAKE_NVRTC_CXX") == nullptr ? "off" : check.empty() ? "ok" : "FAILED");
    if (!check.empty()) {
        p->log = check;
        return result("nvrtcCompileProgram", NVRTC_ERROR_COMPILATION, p->name + ": " + check);
    }
    if (kernels.empty()) {
        p->log = "fake nvrtc: warning: no extern \"C\" __global__ function in " + p->name + "\n";
    } else {
        p->log = "";
    }
    p->compiled = true;
    p->cubin = starts_with(arch, "sm_") ? "FAKECUBIN\narch=" + arch + "\nname=" + p->name + "\nkernels=" + list + "\n"
                                        : "";
    return NVRTC_SUCCESS;
}

int nvrtcGetProgramLogSize(nvrtcProgram prog, size_t* logSizeRet) {
    Program* p = reinterpret_cast<Program*>(prog);
    if (!live(p) || logSizeRet == nullptr) {
        return result("nvrtcGetProgramLogSize", NVRTC_ERROR_INVALID_INPUT, "bad program or output");
    }
    *logSizeRet = p->log.size() + 1;
    return NVRTC_SUCCESS;
}

int nvrtcGetProgramLog(nvrtcProgram prog, char* log) {
    Program* p = reinterpret_cast<Program*>(prog);
    if (!live(p) || log == nullptr) {
        return result("nvrtcGetProgramLog", NVRTC_ERROR_INVALID_INPUT, "bad program or output");
    }
    std::memcpy(log, p->log.c_str(), p->log.size() + 1);
    return NVRTC_SUCCESS;
}

int nvrtcGetCUBINSize(nvrtcProgram prog, size_t* cubinSizeRet) {
    Program* p = reinterpret_cast<Program*>(prog);
    if (!live(p) || cubinSizeRet == nullptr) {
        return result("nvrtcGetCUBINSize", NVRTC_ERROR_INVALID_INPUT, "bad program or output");
    }
    if (!p->compiled || p->cubin.empty()) {
        return result("nvrtcGetCUBINSize", NVRTC_ERROR_INVALID_PROGRAM,
                      "no CUBIN: not compiled, or compiled for a virtual architecture");
    }
    *cubinSizeRet = p->cubin.size() + 1;
    return NVRTC_SUCCESS;
}

int nvrtcGetCUBIN(nvrtcProgram prog, char* cubin) {
    Program* p = reinterpret_cast<Program*>(prog);
    if (!live(p) || cubin == nullptr) {
        return result("nvrtcGetCUBIN", NVRTC_ERROR_INVALID_INPUT, "bad program or output");
    }
    if (!p->compiled || p->cubin.empty()) {
        return result("nvrtcGetCUBIN", NVRTC_ERROR_INVALID_PROGRAM, "no CUBIN");
    }
    std::memcpy(cubin, p->cubin.c_str(), p->cubin.size() + 1);
    return NVRTC_SUCCESS;
}

} // extern "C"
