package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.kernel.BackendSelection;
import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.GpuVisibility;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** {@code --device auto|cpu|cuda}: the backend, chosen on the driver when the command starts. */
public final class DeviceOption {
    /** /dev/nvidia0, then nvidia-smi -L. */
    private static final GpuVisibility GPUS = GpuVisibility.system();

    @Option(names = "--device", defaultValue = "auto", paramLabel = "auto|cpu|cuda", converter = Converter.class,
            description = "Backend: auto uses CUDA when an NVIDIA GPU is visible and the CPU otherwise; cpu; cuda fails"
                    + " when it cannot be had. The CUDA backend is not built yet (issue 8), so auto runs on the CPU"
                    + " (default: ${DEFAULT-VALUE}).")
    DeviceKind device = DeviceKind.AUTO;

    /** Chooses the backend and prints {@code COMMAND: device cpu (reason)} to stderr; an impossible cuda throws. */
    public BackendSelection.Decision select(String command, PrintWriter err) {
        BackendSelection.Decision decision = BackendSelection.select(device, GPUS);
        err.printf("%s: device %s%n", command, decision);
        return decision;
    }

    static final class Converter implements CommandLine.ITypeConverter<DeviceKind> {
        @Override
        public DeviceKind convert(String value) {
            try {
                return DeviceKind.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
