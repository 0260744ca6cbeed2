package govsoc.cluster;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginBundle;
import org.elasticsearch.plugins.PluginsLoader;

/**
 * Runs exactly one Elasticsearch 8 node in this JVM.
 *
 * <p>Usage: {@code ElasticsearchNodeMain <node-home> <modules-source-dir>}. Settings
 * come from {@code <node-home>/config/elasticsearch.yml}. The modules source dir holds
 * one sub-directory per module (jars from Maven Central); a plugin descriptor is
 * written for each and the node's own plugin loader loads them, as it does for a
 * distribution. SIGTERM closes the node cleanly.
 */
public final class ElasticsearchNodeMain {

    /** module dir name -> plugin class */
    static final Map<String, String> MODULES = Map.of(
            "transport-netty4", "org.elasticsearch.transport.netty4.Netty4Plugin",
            "govsoc-root", "govsoc.cluster.esroot.RootInfoPlugin");

    private ElasticsearchNodeMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: ElasticsearchNodeMain <node-home> <modules-source-dir>");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Path modulesSrc = Paths.get(args[1]).toAbsolutePath();
        Path conf = home.resolve("config");
        Settings input = Settings.builder().put("path.home", home.toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                input, Collections.emptyMap(), conf, () -> "node");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env, true);

        installModules(modulesSrc, env.modulesDir());
        Files.createDirectories(env.pluginsDir());

        Set<PluginBundle> modules = PluginsLoader.loadModulesBundles(env.modulesDir());
        Set<PluginBundle> plugins = PluginsLoader.loadPluginsBundles(env.pluginsDir());
        PluginsLoader loader = PluginsLoader.createPluginsLoader(modules, plugins, Map.of(), false);

        final Node node = new Node(env, loader);
        final CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (!node.awaitClose(20, TimeUnit.SECONDS)) {
                    System.err.println("node did not close within 20s");
                }
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "govsoc-node-shutdown"));
        try {
            node.start();
        } catch (Throwable t) {
            t.printStackTrace();
            Runtime.getRuntime().halt(1);
        }
        System.out.println("govsoc: node started");
        closed.await();
    }

    /** Copies each module's jars into modules/NAME and writes its plugin descriptor. */
    static void installModules(Path src, Path dest) throws IOException {
        Files.createDirectories(dest);
        String version = org.elasticsearch.Build.current().version();
        for (Map.Entry<String, String> m : MODULES.entrySet()) {
            Path from = src.resolve(m.getKey());
            Path to = dest.resolve(m.getKey());
            if (!Files.isDirectory(from)) {
                throw new IOException("module jars not found: " + from);
            }
            Files.createDirectories(to);
            try (DirectoryStream<Path> jars = Files.newDirectoryStream(from, "*.jar")) {
                for (Path jar : jars) {
                    Path target = to.resolve(jar.getFileName());
                    if (!Files.exists(target) || Files.size(target) != Files.size(jar)) {
                        Files.copy(jar, target, StandardCopyOption.REPLACE_EXISTING);
                    }
                }
            }
            String descriptor = String.join("\n",
                    "description=" + m.getKey() + " (from Maven Central)",
                    "version=" + version,
                    "name=" + m.getKey(),
                    "classname=" + m.getValue(),
                    "java.version=17",
                    "elasticsearch.version=" + version,
                    "extended.plugins=",
                    "has.native.controller=false",
                    "") ;
            Files.writeString(to.resolve("plugin-descriptor.properties"), descriptor);
        }
    }
}
