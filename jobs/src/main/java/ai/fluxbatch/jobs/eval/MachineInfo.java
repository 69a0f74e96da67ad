package ai.fluxbatch.jobs.eval;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** The machine a benchmark ran on, for its report: CPU model (from /proc/cpuinfo where there is one) and cores. */
public record MachineInfo(String cpu, int cores) {

    public static MachineInfo current() {
        return new MachineInfo(cpuModel(), Runtime.getRuntime().availableProcessors());
    }

    private static String cpuModel() {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (Files.isReadable(cpuinfo)) {
            try (Stream<String> lines = Files.lines(cpuinfo)) {
                var model = lines.filter(l -> l.startsWith("model name")).findFirst();
                if (model.isPresent() && model.get().contains(":")) {
                    return model.get().substring(model.get().indexOf(':') + 1).strip();
                }
            } catch (IOException | java.io.UncheckedIOException e) {
                // fall through to what the JVM knows
            }
        }
        return System.getProperty("os.arch") + " (" + System.getProperty("os.name") + ")";
    }

    @Override
    public String toString() {
        return cpu + ", " + cores + " cores";
    }
}
