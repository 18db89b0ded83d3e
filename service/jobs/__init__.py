"""Training jobs: datasets, mini-batch training off the event loop, checkpoints, progress events.

- :mod:`datasets`  parsing and checking of training data (JSON rows, CSV, ``.npz``);
- :mod:`training`  the training loop: epochs of shuffled mini-batches, as pure NumPy;
- :mod:`runner`    worker threads that run jobs, checkpoint them and keep their heartbeat;
- :mod:`events`    Server-Sent Events of a job's progress, and wake-ups of their streams;
- :mod:`store`     the operations the HTTP layer calls.
"""
