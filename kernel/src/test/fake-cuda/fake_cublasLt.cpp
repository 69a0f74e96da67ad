// fluxbatch: a FAKE libcublasLt.so.13 for CudaDriverDeviceOnFakeDriverTest. JavaCPP's libjnicublas.so links it and
// requires its version node libcublasLt.so.13 (libcublasLt.map); CudaDriverDevice calls none of its functions (they
// bind lazily), so one symbol is enough to carry the node.

extern "C" __attribute__((visibility("default"))) unsigned long cublasLtGetVersion(void) {
    return 130100; // 13.1.0
}
