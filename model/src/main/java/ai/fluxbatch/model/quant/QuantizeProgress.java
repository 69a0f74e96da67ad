package ai.fluxbatch.model.quant;

/** Hears how far a quantization run is: one call per finished layer group (a block, or the other tensors). */
@FunctionalInterface
public interface QuantizeProgress {
    void groupDone(String group, long bytesDone, long bytesTotal, double secondsElapsed);
}
