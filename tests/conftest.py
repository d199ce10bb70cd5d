# The tests run TensorFlow as `import kspikese` sets it up (Keras 2, quiet logs, TensorFlow's CPU
# memory pool), even where a test module imports tensorflow first.
import kspikese  # noqa: F401
