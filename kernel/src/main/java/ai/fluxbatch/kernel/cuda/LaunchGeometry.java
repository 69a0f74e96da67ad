package ai.fluxbatch.kernel.cuda;

/** Grid and block sizes of a kernel launch, and its dynamic shared memory in bytes. */
public record LaunchGeometry(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes) {
    /** CUDA's limit on gridDim.y and gridDim.z. */
    public static final int MAX_GRID_YZ = 65535;

    public LaunchGeometry {
        if (gridX < 1 || gridY < 1 || gridZ < 1 || blockX < 1 || blockY < 1 || blockZ < 1 || sharedBytes < 0) {
            throw new IllegalArgumentException("invalid launch geometry grid (" + gridX + ", " + gridY + ", " + gridZ
                    + ") block (" + blockX + ", " + blockY + ", " + blockZ + ") shared " + sharedBytes);
        }
        if (gridY > MAX_GRID_YZ || gridZ > MAX_GRID_YZ) {
            throw new IllegalArgumentException(
                    "grid (" + gridX + ", " + gridY + ", " + gridZ + ") exceeds CUDA's " + MAX_GRID_YZ + " in y or z");
        }
        if ((long) blockX * blockY * blockZ > 1024) {
            throw new IllegalArgumentException(
                    "block (" + blockX + ", " + blockY + ", " + blockZ + ") has more than 1024 threads");
        }
    }

    public static LaunchGeometry of(int gridX, int blockX) {
        return new LaunchGeometry(gridX, 1, 1, blockX, 1, 1, 0);
    }

    public int threadsPerBlock() {
        return blockX * blockY * blockZ;
    }
}
