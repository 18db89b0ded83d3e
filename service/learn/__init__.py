"""For learners: the chain rule written out, the network and the loss drawn, and the seed blog's
worked example as a walkthrough of any small stored model.

- :mod:`service.learn.chainrule`   an explanation (:func:`service.core.explain`) in Markdown
- :mod:`service.learn.diagram`     the network as SVG: nodes by layer, edges by weight
- :mod:`service.learn.plot`        a line plot with labelled axes as SVG
- :mod:`service.learn.history`     the plots of a model's loss by version and by epoch
- :mod:`service.learn.walkthrough` forward pass, error, backpropagation and one SGD step in
  Markdown, every number in full
- :mod:`service.learn.limits`      how large a network may be to be drawn or walked through

SVG is written with :mod:`xml.etree.ElementTree`: no dependency, exact control of every element
(ids and classes that tests and stylesheets can address), and byte-identical output for the same
model, so that drawings can be cached by ETag and compared in tests.
"""
