package govsoc.cluster;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Runs exactly one OpenSearch node in this JVM.
 *
 * <p>Usage: {@code OpenSearchNodeMain <node-home>}. All settings come from
 * {@code <node-home>/config/opensearch.yml} (written by deploy/search-cluster);
 * logging from {@code <node-home>/config/log4j2.properties}. The modules that a
 * distribution would load from its modules/ directory are loaded from the class
 * path instead. SIGTERM closes the node cleanly.
 */
public final class OpenSearchNodeMain {

    static final String[] MODULES = {
        "org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.geo.GeoModulePlugin",
        "org.opensearch.ingest.common.IngestCommonPlugin",
        "org.opensearch.ingest.useragent.IngestUserAgentPlugin",
        "org.opensearch.script.expression.ExpressionPlugin",
        "org.opensearch.script.mustache.MustachePlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.join.ParentJoinPlugin",
        "org.opensearch.percolator.PercolatorPlugin",
        "org.opensearch.index.rankeval.RankEvalPlugin",
        "org.opensearch.index.reindex.ReindexPlugin",
        "org.opensearch.plugin.repository.url.URLRepositoryPlugin",
        "org.opensearch.transport.Netty4Plugin",
    };

    /** A node whose plugins come from the class path. */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }

        @Override
        protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
            // the listener only feeds log patterns; not needed here
        }
    }

    private OpenSearchNodeMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: OpenSearchNodeMain <node-home> [ignored]");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Path conf = home.resolve("config");
        Settings input = Settings.builder().put("path.home", home.toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                input, Collections.emptyMap(), conf, () -> "node");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env);
        Files.createDirectories(env.modulesFile());
        Files.createDirectories(env.pluginsFile());

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : MODULES) {
            try {
                plugins.add(Class.forName(name).asSubclass(Plugin.class));
            } catch (ClassNotFoundException e) {
                System.err.println("module not on class path, skipped: " + name);
            }
        }

        final Node node = new ClasspathNode(env, plugins);
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
}
