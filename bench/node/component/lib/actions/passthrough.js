'use strict';

// Returning a message makes the sailor emit it as `data` and then `end`.
exports.process = async function process(msg) {
    return { body: msg.body, headers: {} };
};
